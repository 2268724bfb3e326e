"""`monitor worker` and `monitor sink`: the pipeline's long-running processes, each serving its metrics."""

from __future__ import annotations

import click

from core.settings import get_settings


@click.command()
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes on this host (one consumer group; METRICS_PORT, METRICS_PORT+1, ...).")
def worker(concurrency: int) -> None:
    """Run an inference worker (consumes `posts`, produces `sentiment`)."""
    settings = get_settings()
    if concurrency > 1:
        from workers.agent.supervisor import run_workers

        raise SystemExit(run_workers(concurrency, settings.runtime.metrics_port))
    from core.streaming.app import run_app
    from workers.agent.app import build_worker_app

    serve_metrics_or_exit(settings.runtime.metrics_port, settings.runtime.metrics_host)
    run_app(build_worker_app(settings), settings)


@click.command()
def sink() -> None:
    """Run the trend sink (consumes `sentiment`, writes PostgreSQL and Redis)."""
    from core.streaming.app import run_app
    from monitor.sink.agent import build_sink_app

    settings = get_settings()
    serve_metrics_or_exit(settings.runtime.metrics_port, settings.runtime.metrics_host)
    run_app(build_sink_app(settings), settings)


def serve_metrics_or_exit(port: int, host: str | None = None) -> None:
    """Serve METRICS_PORT on METRICS_HOST (`host` overrides it), or stop at start-up with the reason (a taken port)
    instead of a traceback."""
    from core.metrics import MetricsPortInUse, serve_metrics

    try:
        serve_metrics(port, host or get_settings().runtime.metrics_host)
    except MetricsPortInUse as exc:
        raise click.ClickException(str(exc)) from None
