"""`monitor migrate` and `monitor bench ...`: operating the database and measuring the sink."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli_common import database_url
from monitor.settings import get_settings


@click.command()
def migrate() -> None:
    """Upgrade the PostgreSQL schema to the newest revision (the sink also does this at start-up)."""
    from monitor.migrate import upgrade_head

    click.echo(f"schema at revision {upgrade_head(database_url())}")


@click.group()
def bench() -> None:
    """Benchmarks; results are written as JSON under bench/results/."""


@bench.command("sink")
@click.option("--rows", default=20_000, show_default=True, help="Deliveries through the batched path.")
@click.option("--baseline-rows", default=2_000, show_default=True, help="Deliveries through the row-at-a-time path.")
@click.option("--batch-size", default=500, show_default=True, help="Results per transaction (SINK_MAX_BATCH).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("bench/results/sink-cpu.json"),
              show_default=True)
def bench_sink(rows: int, baseline_rows: int, batch_size: int, out: Path) -> None:
    """Sink rows/s, batched vs row-at-a-time, on DATABASE_URL (private schema) or an embedded PostgreSQL."""
    from monitor.benchmarks.sink import run_sink_benchmark

    report = run_sink_benchmark(get_settings().database_url, rows, baseline_rows, batch_size, out)
    batched = report["batched"]["rows_per_s"]
    click.echo(f"batched:        {batched:>10,.0f} rows/s ({rows} rows, batches of {batch_size})")
    click.echo(f"row-at-a-time:  {report['row_at_a_time']['rows_per_s']:>10,.0f} rows/s ({baseline_rows} rows)")
    click.echo(f"ratio:          {report['ratio']:>10}x   bucket totals match: {report['bucket_totals_match']}")
    click.echo(f"device:         {report['device']}")
    click.echo(f"wrote {out}")
