"""The `monitor` command line: run the pipeline's processes, inspect trends, export schemas."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from core.logging import configure_logging
from core.settings import get_settings


@click.group()
def main() -> None:
    """Multimodal sentiment monitor."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)


@main.command()
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


@main.command()
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes on this host (one consumer group; METRICS_PORT, METRICS_PORT+1, ...).")
def worker(concurrency: int) -> None:
    """Run an inference worker (consumes `posts`, produces `sentiment`)."""
    settings = get_settings()
    if concurrency > 1:
        from workers.agent.supervisor import run_workers

        raise SystemExit(run_workers(concurrency, settings.metrics_port))
    from core.metrics import serve_metrics
    from core.streaming.app import run_app
    from workers.agent.app import build_worker_app

    serve_metrics(settings.metrics_port)
    run_app(build_worker_app(settings), settings)


@main.command()
def sink() -> None:
    """Run the trend sink (consumes `sentiment`, writes PostgreSQL and Redis)."""
    from core.metrics import serve_metrics
    from core.streaming.app import run_app
    from monitor.sink.agent import build_sink_app

    settings = get_settings()
    serve_metrics(settings.metrics_port)
    run_app(build_sink_app(settings), settings)


@main.command()
@click.option("--file", "path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              envvar="REPLAY_FILE", help="Recorded posts, one JSON Post per line. [env: REPLAY_FILE]")
@click.option("--samples", default=1000, show_default=True, envvar="REPLAY_SAMPLES",
              help="Without --file: publish this many generated sample posts. [env: REPLAY_SAMPLES]")
@click.option("--rate", type=float, default=None, envvar="REPLAY_RATE",
              help="Posts per second at most (default: as fast as the broker takes them). [env: REPLAY_RATE]")
def replay(path: Path | None, samples: int, rate: float | None) -> None:
    """Publish recorded (or sample) posts to the posts topic, as an external producer would."""
    from monitor.devstack.replay import as_payloads, posts_from_jsonl, publish
    from monitor.devstack.samples import sample_posts

    settings = get_settings()
    posts = posts_from_jsonl(path) if path else sample_posts(samples)
    try:
        sent = asyncio.run(publish(settings, as_payloads(posts), total=None if path else samples, rate=rate))
    except ValueError as exc:  # a bad line in the recording
        raise click.ClickException(str(exc)) from None
    click.echo(f"published {sent} posts to {settings.posts_topic}")


@main.command()
@click.option("--out", type=click.Path(dir_okay=True, file_okay=False), default=None,
              help="Write one <Model>.schema.json per message here instead of printing.")
def schema(out: str | None) -> None:
    """Export the JSON Schema of the wire messages for non-Python producers."""
    from schemas import json_schemas

    schemas = json_schemas()
    if out is None:
        click.echo(json.dumps(schemas, indent=2))
        return
    Path(out).mkdir(parents=True, exist_ok=True)
    for name, body in schemas.items():
        (Path(out) / f"{name}.schema.json").write_text(json.dumps(body, indent=2) + "\n")
    click.echo(f"wrote {len(schemas)} schemas to {out}")


def _register_database_commands() -> None:
    """Sink-side commands live in their own modules: brands, trends, sql, migrate, bench."""
    from monitor.cli.admin import bench, migrate, prune
    from monitor.cli.analyst import sql, trends
    from monitor.cli.api import api
    from monitor.cli.brands import brands

    for command in (brands, trends, sql, migrate, prune, bench, api):
        main.add_command(command)


def _register_training_commands() -> None:
    """RADM training side: train, eval-split, bootstrap (workers/training/cli.py) and `eval` (workers/evaluation/);
    heavy imports stay lazy."""
    from workers.evaluation.cli import evaluate
    from workers.training.cli import COMMANDS

    for command in (*COMMANDS, evaluate):
        main.add_command(command)


_register_database_commands()
_register_training_commands()
