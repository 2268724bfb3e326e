"""Retention against real PostgreSQL: what ages out, what stays, chunking, the lock, the command and the sink's loop.

Each test has a database of its own: pruning is global, and the session database holds other tests' old buckets.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.sink.writer import write_results
from monitor.store import retention
from monitor.store.db import create_engine, post_deletion, post_sentiment, trend_bucket
from monitor.store.deletions import write_deletions
from monitor.store.migrate import upgrade_head
from monitor.store.retention import PRUNE_LOCK_KEY, Retention, prune, run_prune_loop
from monitor.store.trends import read_trends
from schemas import PostDeletion
from tests.integration.cli_helpers import monitor
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
KEEP_30_60 = Retention(posts_days=30, minute_buckets_days=60)


@pytest.fixture
async def db(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    upgrade_head(fresh_database)
    engine = create_engine(fresh_database)
    yield engine
    await engine.dispose()


async def write_posts(engine: AsyncEngine, prefix: str, count: int, created_at: datetime, processed_at: datetime,
                      brand: str = "acme") -> list[str]:
    """`count` posts with thumbnails, as the sink writes them, then dated as if written at `processed_at`."""
    ids = [f"{prefix}-{i}" for i in range(count)]
    await write_results(engine, [result(post_id, [brand], created_at, "positive").model_copy(
        update={"thumbnail": b"\xff\xd8" + post_id.encode()}) for post_id in ids])
    async with engine.begin() as conn:
        await conn.execute(update(post_sentiment).where(post_sentiment.c.post_id.in_(ids))
                           .values(processed_at=processed_at))
    return ids


async def stored(engine: AsyncEngine, column) -> set:
    async with engine.connect() as conn:
        return set((await conn.execute(select(column))).scalars())


def pruned_rows(table: str) -> float:
    return REGISTRY.get_sample_value("monitor_sink_pruned_rows_total", {"table": table}) or 0.0


async def test_old_posts_and_minute_buckets_go_the_rest_stays(db):
    old = await write_posts(db, "old", 3, NOW - timedelta(days=90), NOW - timedelta(days=31))
    # created long ago, written recently (a backfill): kept, so its redelivery still counts once
    backfill = await write_posts(db, "backfill", 2, NOW - timedelta(days=90), NOW - timedelta(days=29))
    recent = await write_posts(db, "recent", 2, NOW - timedelta(days=1), NOW - timedelta(days=1))
    hour_and_day_before = {g: await read_trends(db, "acme", g) for g in ("hour", "day")}

    report = await prune(db, KEEP_30_60, now=NOW)

    assert report is not None
    assert (report.posts, report.posts_before) == (3, NOW - timedelta(days=30))
    assert (report.minute_buckets, report.minute_buckets_before) == (1, NOW - timedelta(days=60))
    assert await stored(db, post_sentiment.c.post_id) == set(backfill + recent)
    assert await stored(db, post_sentiment.c.thumbnail) == {b"\xff\xd8" + i.encode() for i in backfill + recent}
    minutes = await read_trends(db, "acme", "minute")
    assert [(b.bucket_start, b.volume) for b in minutes] == [(NOW - timedelta(days=1), 2)]
    assert {g: await read_trends(db, "acme", g) for g in ("hour", "day")} == hour_and_day_before
    assert sum(b.volume for b in hour_and_day_before["day"]) == len(old + backfill + recent)

    assert await write_results(db, [result(backfill[0], ["acme"], NOW - timedelta(days=90), "positive")]) == []
    assert (await prune(db, KEEP_30_60, now=NOW)).posts == 0  # nothing left to do


async def test_recorded_deletions_age_out_with_the_posts(db):
    old = await write_posts(db, "old", 1, NOW - timedelta(days=40), NOW - timedelta(days=40))
    await write_deletions(db, [PostDeletion(post_id=post_id, deleted_at=NOW - timedelta(days=39))
                               for post_id in [*old, "old-unknown", "new-unknown"]])
    async with db.begin() as conn:  # recorded as if by the sink then, but one of them only yesterday
        await conn.execute(update(post_deletion).values(recorded_at=NOW - timedelta(days=31)))
        await conn.execute(update(post_deletion).where(post_deletion.c.post_id == "new-unknown")
                           .values(recorded_at=NOW - timedelta(days=1)))
    assert (await prune(db, KEEP_30_60, now=NOW, dry_run=True)).deletions == 2
    report = await prune(db, KEEP_30_60, now=NOW)
    assert (report.posts, report.deletions) == (1, 2)
    assert await stored(db, post_deletion.c.post_id) == {"new-unknown"}
    assert pruned_rows("post_deletion") >= 2


async def test_zero_keeps_everything(db):
    await write_posts(db, "ancient", 2, NOW - timedelta(days=900), NOW - timedelta(days=900))
    report = await prune(db, Retention(posts_days=0, minute_buckets_days=0), now=NOW)
    assert (report.posts, report.minute_buckets, report.posts_before, report.minute_buckets_before) == (0, 0, None,
                                                                                                     None)
    assert len(await stored(db, post_sentiment.c.post_id)) == 2


async def test_deletes_in_chunks_until_none_is_left(db, monkeypatch):
    monkeypatch.setattr(retention, "CHUNK_ROWS", 4)
    counted_before = {table: pruned_rows(table) for table in ("post_sentiment", "trend_bucket")}
    for minute in range(10):  # ten minute buckets, 2 posts each
        await write_posts(db, f"m{minute}", 2, NOW - timedelta(days=70, minutes=minute), NOW - timedelta(days=40))
    report = await prune(db, KEEP_30_60, now=NOW)
    assert (report.posts, report.minute_buckets) == (20, 10)  # posts: 5 chunks and an empty one; buckets: 4, 4, 2
    assert pruned_rows("post_sentiment") - counted_before["post_sentiment"] == 20
    assert pruned_rows("trend_bucket") - counted_before["trend_bucket"] == 10
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(post_sentiment)) == 0
        assert await conn.scalar(select(func.count()).select_from(trend_bucket).where(
            trend_bucket.c.granularity == "minute")) == 0


async def test_dry_run_counts_and_deletes_nothing(db):
    await write_posts(db, "old", 3, NOW - timedelta(days=61), NOW - timedelta(days=31))
    report = await prune(db, KEEP_30_60, now=NOW, dry_run=True)
    assert (report.posts, report.minute_buckets) == (3, 1)
    assert len(await stored(db, post_sentiment.c.post_id)) == 3
    assert (await prune(db, KEEP_30_60, now=NOW)).posts == 3  # the dry run released the lock


async def test_one_process_prunes_at_a_time(db):
    await write_posts(db, "old", 1, NOW - timedelta(days=61), NOW - timedelta(days=31))
    async with db.connect() as holder:
        assert (await holder.execute(select(func.pg_try_advisory_lock(PRUNE_LOCK_KEY)))).scalar_one()
        assert await prune(db, KEEP_30_60, now=NOW) is None
        await holder.execute(select(func.pg_advisory_unlock(PRUNE_LOCK_KEY)))
    assert (await prune(db, KEEP_30_60, now=NOW)).posts == 1


async def test_a_failed_pass_frees_the_lock(db, fresh_database, monkeypatch):
    await write_posts(db, "old", 1, NOW - timedelta(days=61), NOW - timedelta(days=31))

    async def broken(conn, statement, table):
        await conn.execute(text("SELECT 1 / 0"))

    with monkeypatch.context() as patched:
        patched.setattr(retention, "_delete_in_chunks", broken)
        with pytest.raises(Exception, match="division by zero"):
            await prune(db, KEEP_30_60, now=NOW)
    other = create_engine(fresh_database)  # another session: the lock is re-entrant within one
    try:
        assert (await prune(other, KEEP_30_60, now=NOW)).posts == 1
    finally:
        await other.dispose()


async def test_the_sinks_loop_prunes_and_survives_a_failing_pass(db, monkeypatch):
    await write_posts(db, "old", 2, NOW - timedelta(days=61), datetime.now(UTC) - timedelta(days=31))
    passes: list[str] = []
    real_prune = retention.prune

    async def flaky_prune(engine, kept, now=None, dry_run=False):
        if not passes:
            passes.append("failed")
            raise OSError("connection refused")
        passes.append("ran")
        return await real_prune(engine, kept, now, dry_run)

    monkeypatch.setattr(retention, "prune", flaky_prune)
    loop = asyncio.create_task(run_prune_loop(db, KEEP_30_60, interval_s=0.05, first_delay_s=0))
    try:
        async with asyncio.timeout(30):
            while await stored(db, post_sentiment.c.post_id):
                await asyncio.sleep(0.05)
    finally:
        loop.cancel()
    assert passes[:2] == ["failed", "ran"]


async def test_loop_returns_at_once_when_retention_is_off(db):
    async with asyncio.timeout(5):
        await run_prune_loop(db, Retention(0, 0), interval_s=0.01, first_delay_s=60)


def test_prune_command(stack, fresh_database):
    upgrade_head(fresh_database)

    async def seed() -> None:
        engine = create_engine(fresh_database)
        now = datetime.now(UTC)
        await write_posts(engine, "old", 2, now - timedelta(days=61), now - timedelta(days=31))
        await write_posts(engine, "new", 1, now, now)
        await engine.dispose()

    asyncio.run(seed())
    env = {"DATABASE_URL": fresh_database}
    dry = monitor(stack, "prune", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert re.search(r"would delete +2 posts", dry.stdout) and re.search(r"would delete +1 minute buckets", dry.stdout)
    done = monitor(stack, "prune", env={**env, "RETENTION_MINUTE_BUCKETS_DAYS": "0"})
    assert done.returncode == 0, done.stderr
    assert re.search(r"deleted +2 posts", done.stdout) and "kept forever" in done.stdout
    again = monitor(stack, "prune", env=env)
    assert re.search(r"deleted +0 posts", again.stdout) and re.search(r"deleted +1 minute buckets", again.stdout)


async def test_the_index_retention_deletes_by_exists(db):
    async with db.connect() as conn:
        names = set((await conn.execute(text(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'post_sentiment'"))).scalars())
    assert "ix_post_sentiment_processed_at" in names
