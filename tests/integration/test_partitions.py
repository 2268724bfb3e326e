"""Weekly partitions of the per-post tables against real PostgreSQL: rows land in their week, a post id stays unique
across weeks, the default partition hands rows over to a new week, retention drops whole weeks of every per-post
table, and readers see posts across partition boundaries.

Each test has a database of its own: partitions are schema-wide.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, literal_column, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.api.queries import example_posts
from monitor.sink.writer import write_results
from monitor.store.db import create_engine, keyphrase_post, post_rescore, post_sentiment
from monitor.store.deletions import write_deletions
from monitor.store.keyphrases import count_keyphrases
from monitor.store.migrate import upgrade_head
from monitor.store.partitions import (
    PARTITIONED_TABLES,
    ensure_coming_partitions,
    ensure_partitions,
    weeks_between,
)
from monitor.store.post_content import post_content
from monitor.store.rescored import posts_to_rescore, rescore_row, write_rescores
from monitor.store.retention import Retention, prune
from monitor.store.trends import read_trends
from schemas import PostDeletion
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)  # a Thursday
KEEP_30 = Retention(posts_days=30, minute_buckets_days=0)


@pytest.fixture
async def db(fresh_database: str) -> AsyncIterator[AsyncEngine]:
    upgrade_head(fresh_database)
    engine = create_engine(fresh_database)
    async with engine.begin() as conn:  # the weeks these tests date their posts in, as sinks would have made them
        await conn.run_sync(ensure_partitions, weeks_between(NOW - timedelta(days=70), NOW))
    yield engine
    await engine.dispose()


async def write_at(engine: AsyncEngine, post_ids: list[str], processed_at: datetime, brand: str = "part",
                   created_at: datetime | None = None) -> None:
    """Posts written by the sink, then dated as if it had written them at `processed_at` (the row moves to the
    partition of that week)."""
    created = created_at or processed_at
    await write_results(engine, [result(post_id, [brand], created, "positive", text=f"battery life {post_id}")
                                 .model_copy(update={"thumbnail": b"\xff\xd8" + post_id.encode()})
                                 for post_id in post_ids])
    async with engine.begin() as conn:
        await conn.execute(update(post_sentiment).where(post_sentiment.c.post_id.in_(post_ids))
                           .values(processed_at=processed_at))


async def partition_of(engine: AsyncEngine, table, post_id: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(literal_column("tableoid::regclass::text")).select_from(table)
                                  .where(table.c.post_id == post_id))
        return list(rows.scalars())


async def partitions(engine: AsyncEngine, table: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = "
                                       "i.inhrelid WHERE i.inhparent = CAST(:t AS regclass)"), {"t": table})
        return set(rows.scalars())


async def day_volume(engine: AsyncEngine, brand: str) -> int:
    return sum(b.volume for b in await read_trends(engine, brand, "day"))


async def test_a_post_counts_once_whichever_week_holds_it(db):
    await write_at(db, ["p-1"], NOW - timedelta(days=14))
    assert await partition_of(db, post_sentiment, "p-1") == ["post_sentiment_p20261109"]
    assert await write_results(db, [result("p-1", ["part"], NOW - timedelta(days=14), "positive")]) == []
    assert await partition_of(db, post_sentiment, "p-1") == ["post_sentiment_p20261109"]  # not a second row now
    assert await day_volume(db, "part") == 1


async def test_a_new_week_takes_its_rows_from_the_default_partition(db):
    long_ago = datetime(2025, 3, 5, 9, tzinfo=UTC)  # a Wednesday, in no partition yet
    await write_at(db, ["old-1", "old-2"], long_ago)
    assert await partition_of(db, post_sentiment, "old-1") == ["post_sentiment_default"]
    async with db.begin() as conn:
        created = await conn.run_sync(ensure_partitions, [date(2025, 3, 3)])
    assert created == [table.partition(date(2025, 3, 3)) for table in PARTITIONED_TABLES]
    assert await partition_of(db, post_sentiment, "old-1") == ["post_sentiment_p20250303"]
    async with db.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM post_sentiment_default")) == 0
    assert await write_results(db, [result("old-2", ["part"], long_ago, "positive")]) == []  # still known
    async with db.begin() as conn:  # again: nothing to do
        assert await conn.run_sync(ensure_partitions, [date(2025, 3, 3)]) == []


async def test_the_coming_weeks_exist_ahead_of_the_sink(db):
    created = await ensure_coming_partitions(db, now=datetime(2027, 2, 3, tzinfo=UTC))
    assert created == [f"{t.name}_p{day}" for t in PARTITIONED_TABLES for day in ("20270201", "20270208", "20270215")]
    assert await ensure_coming_partitions(db, now=datetime(2027, 2, 3, tzinfo=UTC)) == []


async def test_retention_drops_whole_weeks_of_every_per_post_table(db):
    # cutoff NOW - 30 days = Tue 2026-10-27 12:00: the week of 2026-10-12 is wholly older, that of 10-26 is not
    await write_at(db, ["gone-1", "gone-2"], datetime(2026, 10, 14, tzinfo=UTC))
    await write_at(db, ["straddling-1"], datetime(2026, 10, 26, 13, tzinfo=UTC))  # older than 30 days: kept
    await write_at(db, ["recent-1"], NOW - timedelta(days=1))
    await write_at(db, ["default-1"], datetime(2025, 1, 8, tzinfo=UTC))  # in the default partition: deleted alone
    assert (await count_keyphrases(db)).counted == 5
    async with db.begin() as conn:
        stored = await posts_to_rescore(conn, "challenger@1", None, None, None, limit=10)
        await write_rescores(conn, [rescore_row(p, result(p.post_id, ["part"], p.created_at, "negative")
                                                .model_copy(update={"model_version": "challenger@1"}))
                                    for p in stored])
    assert await partition_of(db, post_rescore, "gone-1") == ["post_rescore_p20261012"]
    assert await partition_of(db, keyphrase_post, "gone-1") == ["keyphrase_post_p20261012"]
    volume = await day_volume(db, "part")

    assert (await prune(db, KEEP_30, now=NOW, dry_run=True)).posts == 3
    report = await prune(db, KEEP_30, now=NOW)

    assert report.posts == 3  # two in the dropped week, one from the default partition
    for table in ("post_sentiment", "post_rescore", "keyphrase_post"):
        assert f"{table}_p20261012" not in await partitions(db, table)
        assert f"{table}_p20261026" in await partitions(db, table)
        async with db.connect() as conn:
            left = set((await conn.execute(text(f"SELECT post_id FROM {table}"))).scalars())
        assert left == {"straddling-1", "recent-1"}, table
    assert await day_volume(db, "part") == volume  # the trends keep what the posts counted
    assert (await prune(db, KEEP_30, now=NOW)).posts == 0


async def test_readers_see_posts_across_weeks(db):
    # created in one order, stored in weeks of the other: readers order by creation, whatever the partition
    for i, days_ago in enumerate((3, 10, 17)):
        await write_at(db, [f"r-{i}"], NOW - timedelta(days=days_ago), brand="across",
                       created_at=NOW - timedelta(hours=24 - i))
    listed = await example_posts(db, "across", None, None, None, limit=10)
    assert [p["post_id"] for p in listed] == ["r-2", "r-1", "r-0"]
    assert all(p["thumbnail_url"] for p in listed)
    content = await post_content(db, "r-2")
    assert content is not None and content.jpeg == b"\xff\xd8r-2"

    applied = await write_deletions(db, [PostDeletion(post_id="r-2", deleted_at=NOW)])  # stored 17 days ago
    assert applied.deleted == 1
    assert await day_volume(db, "across") == 2
    async with db.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(post_sentiment)
                                 .where(post_sentiment.c.post_id == "r-2")) == 1
    assert await post_content(db, "r-2") is None
