"""`monitor migrate`, `monitor prune` and `monitor bench ...`: operating the database and measuring the pipeline."""

from __future__ import annotations

import click

from core.settings import get_settings
from monitor.cli.common import database_url, run_with_engine


@click.command()
def migrate() -> None:
    """Upgrade the PostgreSQL schema to the newest revision (the sink also does this at start-up)."""
    from monitor.store.migrate import upgrade_head

    click.echo(f"schema at revision {upgrade_head(database_url())}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def prune(dry_run: bool) -> None:
    """Delete per-post rows and minute buckets older than RETENTION_POSTS_DAYS / RETENTION_MINUTE_BUCKETS_DAYS now
    (every sink also does it every RETENTION_INTERVAL_S)."""
    from monitor.store.retention import Retention
    from monitor.store.retention import prune as prune_expired

    retention = Retention.from_settings(get_settings())
    report = run_with_engine(lambda engine: prune_expired(engine, retention, dry_run=dry_run))
    if report is None:
        raise click.ClickException("another process is pruning right now (a sink?); try again later")
    verb = "would delete" if dry_run else "deleted"
    for what, count, before in (("posts (and their thumbnails) written before", report.posts, report.posts_before),
                                ("recorded post deletions older than", report.deletions, report.posts_before),
                                ("minute buckets starting before", report.minute_buckets,
                                 report.minute_buckets_before)):
        when = f"{before:%Y-%m-%d %H:%M} UTC" if before else "- (retention 0: kept forever)"
        click.echo(f"{verb} {count:>9,} {what} {when}")
