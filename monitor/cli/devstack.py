"""`monitor demo`, `monitor replay` and `monitor stack`: the embedded pipeline with sample posts, generated load, and
the embedded servers alone."""

from __future__ import annotations

import asyncio
import typing

import click

from core.process import stop_on_sigterm
from core.settings import RuntimeSettings, get_settings


@click.command()
@click.option("--posts", default=300, show_default=True, help="How many sample posts to publish.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait for all posts to be stored.")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Then start the API and dashboard and keep publishing live sample posts until Ctrl-C.")
@click.option("--rate", default=2.0, show_default=True, type=click.FloatRange(min=0.1),
              help="With --serve: live sample posts per second.")
def demo(posts: int, timeout: float, serve: bool, rate: float) -> None:
    """Start the embedded stack, worker and sink; publish sample posts; print the trends; serve the dashboard."""
    from monitor.devstack.demo import run_demo

    run_demo(get_settings(), posts, timeout, echo=click.echo, serve=serve, rate=rate)


@click.command()
@click.option("--samples", default=1000, show_default=True, envvar="REPLAY_SAMPLES",
              help="How many generated sample posts to publish. [env: REPLAY_SAMPLES]")
@click.option("--rate", type=float, default=None, envvar="REPLAY_RATE",
              help="Posts per second at most (default: as fast as the broker takes them). [env: REPLAY_RATE]")
def replay(samples: int, rate: float | None) -> None:
    """Publish generated sample posts to the posts topic (a load test); real exports go through
    `monitor ingest file`."""
    from monitor.devstack.replay import as_payloads, publish
    from monitor.devstack.samples import sample_posts

    settings = get_settings()
    sent = asyncio.run(publish(settings, as_payloads(sample_posts(samples)), total=samples, rate=rate))
    click.echo(f"published {sent} sample posts to {settings.kafka.posts_topic}")


BROKERS = typing.get_args(RuntimeSettings.model_fields["embedded_broker"].annotation)
"""EMBEDDED_BROKER's values, from the setting itself."""


@click.command()
@click.option("--broker", type=click.Choice(BROKERS), default=None,
              help="The broker to run (default: EMBEDDED_BROKER, which defaults to tansu).")
def stack(broker: str | None) -> None:
    """Start the embedded broker, PostgreSQL and Redis alone and print their addresses, until Ctrl-C.

    For producers of your own, or a worker and sink run by hand: paste the printed lines into their shell."""
    from monitor.devstack.embedded.stack import EmbeddedStack

    settings = get_settings()
    data_dir = settings.runtime.data_dir / "stack"
    stop_on_sigterm()
    with EmbeddedStack.create(data_dir, broker=broker or settings.runtime.embedded_broker) as running:
        click.echo(f"# the embedded stack is up (data and logs under {data_dir}); Ctrl-C stops it")
        for name, value in running.env().items():
            click.echo(f"export {name}={value}")
        try:
            running.wait()
        except KeyboardInterrupt:
            click.echo("\nstopping ...")
