"""Data retention: per-post rows and minute buckets age out; hour and day buckets are kept.

Per-post rows (`post_sentiment`) serve two readers: the sink's effectively-once check, which a redelivered result
needs only while Kafka can still redeliver it, and the dashboard's example posts. They age by `processed_at`, the
time the sink first wrote them, not by `created_at`: a backfill of old posts stays deduplicated for the whole
retention after it ran. They are partitioned by week (`monitor/store/partitions.py`), and a week goes as a whole,
by dropping its partitions, once all of it is older than the retention: a post is kept up to a week longer than
RETENTION_POSTS_DAYS, and no row is deleted one by one (no dead tuples, no vacuum debt). Rows that fell into a
table's DEFAULT partition (a week without a partition of its own) are deleted in chunks instead. Re-scored posts
(`post_rescore`) and keyphrase records (`keyphrase_post`) share their posts' weeks and go with them, a
challenger's shadow results with the posts of their time, re-scored minute buckets and hour keyphrase
buckets with the live minute buckets. Minute buckets are 1,440 rows per brand and day; alert rules read them at
most `LOOKBACK_DAYS` (37) back. Hour and day trend buckets are small and kept. A recorded deletion
(`post_deletion`) keeps a post's late result from being counted; it ages with the posts, by the time the sink
recorded it.

Rows go in chunks of `CHUNK_ROWS`, one short transaction each, so the sink's writes never wait long behind a
pass. A session advisory lock lets one process prune at a time (every sink replica runs the loop, and an
operator may run `monitor prune` besides).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, column, delete, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import metrics
from core.logging import error_summary, get_logger
from core.settings import Settings
from monitor.store.db import (
    BUCKET_KEY,
    keyphrase_bucket,
    post_deletion,
    rescored_bucket,
    shadow_result,
    trend_bucket,
)
from monitor.store.partitions import PARTITIONED_TABLES, PartitionedTable, drop_expired_partitions

log = get_logger(__name__)

PRUNE_LOCK_KEY = 0x5E_A1_E8  # any constant, distinct from the migration and alert locks
CHUNK_ROWS = 5_000
FIRST_PASS_DELAY_S = 60.0
"""The sink's first pass waits this long after start-up, so a restart loop does not prune on every start."""


@dataclass(frozen=True)
class Retention:
    """Days to keep each kind of row; 0 keeps it forever."""

    posts_days: int
    minute_buckets_days: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Retention:
        return cls(settings.retention.posts_days, settings.retention.minute_buckets_days)

    def cutoffs(self, now: datetime) -> tuple[datetime | None, datetime | None]:
        """(posts processed before, minute buckets starting before) which go; None = nothing goes."""
        def before(days: int) -> datetime | None:
            return now - timedelta(days=days) if days else None
        return before(self.posts_days), before(self.minute_buckets_days)

    def pruned_window(self, granularity: str, since: datetime | None, now: datetime | None = None) -> str | None:
        """Why a series read from `since` would show pruned minute buckets as a quiet stretch; None when it would
        not. Readers refuse such a window rather than answer it."""
        _, minutes_before = self.cutoffs(now or datetime.now(UTC))
        if granularity != "minute" or minutes_before is None or since is None or since >= minutes_before:
            return None
        return (f"minute buckets are kept for {self.minute_buckets_days} days (RETENTION_MINUTE_BUCKETS_DAYS): ask "
                "for granularity hour or day, or a later `since`")


@dataclass(frozen=True)
class PruneReport:
    posts: int
    minute_buckets: int
    posts_before: datetime | None
    minute_buckets_before: datetime | None
    deletions: int = 0
    """Recorded deletions, pruned with the posts (at `posts_before`)."""


def _expired_deletions(before: datetime):
    return select(post_deletion.c.post_id).where(post_deletion.c.recorded_at < before)


def _expired_shadow_results(before: datetime):
    return select(shadow_result.c.post_id, shadow_result.c.model_version).where(shadow_result.c.recorded_at < before)


def _expired_minute_buckets(before: datetime, table=trend_bucket):
    tb = table.c
    return select(*(tb[name] for name in BUCKET_KEY)).where(and_(tb.granularity == "minute", tb.bucket_start < before))


def _expired_default_rows(table: PartitionedTable):
    return text(f"SELECT ctid FROM {table.default} WHERE {table.key} < :before")


def _delete_default_rows_chunk(table: PartitionedTable, before: datetime):
    return text(f"DELETE FROM {table.default} WHERE ctid IN (SELECT ctid FROM {table.default} WHERE {table.key} < "
                f":before LIMIT {CHUNK_ROWS} FOR UPDATE SKIP LOCKED)").bindparams(before=before)


def _delete_deletions_chunk(before: datetime):
    chunk = _expired_deletions(before).limit(CHUNK_ROWS).with_for_update(skip_locked=True).scalar_subquery()
    return delete(post_deletion).where(post_deletion.c.post_id.in_(chunk))


def _delete_shadow_results_chunk(before: datetime):
    sr = shadow_result.c
    chunk = _expired_shadow_results(before).limit(CHUNK_ROWS).with_for_update(skip_locked=True)
    return delete(shadow_result).where(tuple_(sr.post_id, sr.model_version).in_(chunk))


def _delete_hour_keyphrases_chunk(before: datetime):
    kb = keyphrase_bucket.c
    key = (kb.brand, kb.granularity, kb.bucket_start, kb.label, kb.phrase)
    chunk = (select(*key).where(kb.granularity == "hour", kb.bucket_start < before).limit(CHUNK_ROWS)
             .with_for_update(skip_locked=True))
    return delete(keyphrase_bucket).where(tuple_(*key).in_(chunk))


def _delete_minute_buckets_chunk(before: datetime, table=trend_bucket):
    tb = table.c
    chunk = _expired_minute_buckets(before, table).limit(CHUNK_ROWS).with_for_update(skip_locked=True)
    return delete(table).where(tuple_(*(tb[name] for name in BUCKET_KEY)).in_(chunk))


async def _count(conn: AsyncConnection, query) -> int:
    return (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()


async def _prune_posts(conn: AsyncConnection, before: datetime, dry_run: bool) -> int:
    """Drop the weeks of per-post rows wholly before `before`, delete older rows from the default partitions;
    returns how many posts (`post_sentiment` rows) went, or would go."""
    dropped = await conn.run_sync(drop_expired_partitions, before, dry_run)
    await (conn.rollback() if dry_run else conn.commit())
    posts = sum(d.rows for d in dropped if d.table == "post_sentiment")
    for table in PARTITIONED_TABLES:
        if dry_run:
            expired = _expired_default_rows(table).bindparams(before=before).columns(column("ctid"))
            rows = await _count(conn, expired)
        else:
            for partition in (d for d in dropped if d.table == table.name):
                metrics.PRUNED_ROWS.labels(table.name).inc(partition.rows)
            rows = await _delete_in_chunks(conn, _delete_default_rows_chunk(table, before), table.name)
        if table.name == "post_sentiment":
            posts += rows
    return posts


async def _delete_in_chunks(conn: AsyncConnection, statement, table: str) -> int:
    """Run `statement` (one chunk) in its own transaction until a chunk comes back short."""
    total = 0
    while True:
        deleted = (await conn.execute(statement)).rowcount
        await conn.commit()
        total += deleted
        metrics.PRUNED_ROWS.labels(table).inc(deleted)
        if deleted < CHUNK_ROWS:
            return total


async def prune(engine: AsyncEngine, retention: Retention, now: datetime | None = None,
                dry_run: bool = False) -> PruneReport | None:
    """Delete (or, with `dry_run`, count) what `retention` no longer keeps; None when another process holds the
    pruning lock."""
    posts_before, minutes_before = retention.cutoffs(now or datetime.now(UTC))
    async with engine.connect() as conn:
        if not (await conn.execute(select(func.pg_try_advisory_lock(PRUNE_LOCK_KEY)))).scalar_one():
            await conn.rollback()
            return None
        try:
            await conn.commit()
            if dry_run:
                posts = await _prune_posts(conn, posts_before, dry_run=True) if posts_before else 0
                deletions = await _count(conn, _expired_deletions(posts_before)) if posts_before else 0
                minutes = await _count(conn, _expired_minute_buckets(minutes_before)) if minutes_before else 0
                await conn.rollback()
            else:
                posts = await _prune_posts(conn, posts_before, dry_run=False) if posts_before else 0
                deletions = await _delete_in_chunks(conn, _delete_deletions_chunk(posts_before),
                                                    "post_deletion") if posts_before else 0
                minutes = await _delete_in_chunks(conn, _delete_minute_buckets_chunk(minutes_before),
                                                  "trend_bucket") if minutes_before else 0
                if posts_before:  # a challenger's results, like the posts they are compared with
                    await _delete_in_chunks(conn, _delete_shadow_results_chunk(posts_before), "shadow_result")
                if minutes_before:
                    await _delete_in_chunks(conn, _delete_minute_buckets_chunk(minutes_before, rescored_bucket),
                                            "rescored_bucket")
                    await _delete_in_chunks(conn, _delete_hour_keyphrases_chunk(minutes_before), "keyphrase_bucket")
        except BaseException:
            # A session lock outlives the pass on a pooled connection; closing the session is what surely frees it.
            await conn.invalidate()
            raise
        await conn.execute(select(func.pg_advisory_unlock(PRUNE_LOCK_KEY)))
        await conn.commit()
    return PruneReport(posts, minutes, posts_before, minutes_before, deletions)


async def run_prune_loop(engine: AsyncEngine, retention: Retention, interval_s: float,
                         first_delay_s: float = FIRST_PASS_DELAY_S) -> None:
    """Prune every `interval_s` until cancelled; a failed pass (database down) is logged and tried again later."""
    if not (retention.posts_days or retention.minute_buckets_days):
        log.info("retention off: every post and bucket is kept")
        return
    log.info("retention loop started", posts_days=retention.posts_days,
             minute_buckets_days=retention.minute_buckets_days, interval_s=interval_s)
    await asyncio.sleep(first_delay_s)
    while True:
        try:
            report = await prune(engine, retention)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a database outage
            log.warning("retention pass failed, retrying next interval", error=error_summary(exc))
        else:
            if report is None:
                log.debug("retention pass skipped: another process is pruning")
            else:
                log.info("retention pass", posts=report.posts, minute_buckets=report.minute_buckets,
                         deletions=report.deletions)
        await asyncio.sleep(interval_s)
