"""Post deletions against real PostgreSQL: counted out exactly once, before or after the result, text and image gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from monitor.api.queries import example_posts
from monitor.sink.writer import write_results
from monitor.store.cache import cache_buckets, cached_series
from monitor.store.db import GRANULARITIES, post_deletion, post_sentiment
from monitor.store.deletions import write_deletions
from monitor.store.trends import read_trends
from schemas import PostDeletion, TrendBucket
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration
T0 = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
GONE_AT = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)


def deletion(post_id: str, source: str = "bluesky") -> PostDeletion:
    return PostDeletion(post_id=post_id, deleted_at=GONE_AT, source=source)


async def counts(engine, brand: str) -> dict[str, list[tuple]]:
    """(negative, neutral, positive, removed) per bucket, at each granularity."""
    return {g: [(b.negative, b.neutral, b.positive, b.removed) for b in await read_trends(engine, brand, g)]
            for g in GRANULARITIES}


async def post(engine, post_id: str) -> dict | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(post_sentiment).where(post_sentiment.c.post_id == post_id))).mappings()
        return dict(row.one_or_none() or {}) or None


async def test_a_deleted_post_leaves_its_buckets_exactly_once(engine):
    kept = result("del-1", ["delbrand", "delother"], T0, "positive")
    gone = result("del-2", ["delbrand", "delother"], T0 + timedelta(seconds=10), "negative")
    await write_results(engine, [kept, gone])

    applied = await write_deletions(engine, [deletion("del-2"), deletion("del-2")])  # a duplicate in the batch too
    assert (applied.deleted, applied.recorded) == (1, 1)
    assert sorted((b.brand, b.granularity) for b in applied.buckets) == sorted(
        (brand, g) for brand in ("delbrand", "delother") for g in GRANULARITIES)
    assert all((b.negative, b.positive, b.removed) == (0, 1, 1) for b in applied.buckets)  # new totals
    expected = {g: [(0, 0, 1, 1)] for g in GRANULARITIES}
    assert await counts(engine, "delbrand") == expected
    assert await counts(engine, "delother") == expected
    [bucket] = await read_trends(engine, "delbrand", "hour")
    assert bucket.polarity_sum == pytest.approx(kept.polarity)

    again = await write_deletions(engine, [deletion("del-2")])  # redelivered
    assert (again.deleted, again.recorded, again.buckets) == (0, 0, [])
    assert await write_results(engine, [gone]) == []  # and its result redelivered: not counted again
    assert await counts(engine, "delbrand") == expected


async def test_a_deletion_before_its_result_keeps_the_post_out(engine):
    applied = await write_deletions(engine, [deletion("early-1")])
    assert (applied.deleted, applied.recorded, applied.buckets) == (0, 1, [])
    with_image = result("early-1", ["earlybrand"], T0, "positive").model_copy(
        update={"image_ref": "sha256:ee", "thumbnail": b"\xff\xd8early"})
    other = result("early-2", ["earlybrand"], T0, "neutral")
    changed = await write_results(engine, [with_image, other])
    assert {(b.neutral, b.positive) for b in changed} == {(1, 0)}
    assert await counts(engine, "earlybrand") == {g: [(0, 1, 0, 0)] for g in GRANULARITIES}
    assert await post(engine, "early-1") is None  # nothing stored, not even its thumbnail
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).select_from(post_sentiment)
                                 .where(post_sentiment.c.post_id == "early-1")) == 0


async def test_a_deletion_of_an_unknown_post_is_recorded_and_harmless(engine):
    before = await counts(engine, "delbrand")
    applied = await write_deletions(engine, [deletion("never-seen", source="mastodon")])
    assert (applied.deleted, applied.recorded, applied.buckets) == (0, 1, [])
    async with engine.connect() as conn:
        query = select(post_deletion).where(post_deletion.c.post_id == "never-seen")
        row = (await conn.execute(query)).mappings().one()
    assert (row["deleted_at"], row["source"]) == (GONE_AT, "mastodon") and row["recorded_at"] is not None
    assert await counts(engine, "delbrand") == before


async def test_text_and_thumbnail_are_gone_and_readers_skip_the_post(engine):
    posted = result("text-1", ["textbrand"], T0, "neutral", text="my secret words").model_copy(
        update={"image_ref": "sha256:aa", "thumbnail": b"\xff\xd8thumb"})
    await write_results(engine, [posted, result("text-2", ["textbrand"], T0, "positive", text="still here")])
    await write_deletions(engine, [deletion("text-1")])
    row = await post(engine, "text-1")
    assert row is not None  # kept, so a redelivered result is still recognised
    assert (row["text_excerpt"], row["image_ref"], row["deleted_at"]) == ("", None, GONE_AT)
    async with engine.connect() as conn:
        assert await conn.scalar(select(post_sentiment.c.thumbnail).where(post_sentiment.c.post_id == "text-1")) is None
    await write_results(engine, [posted])  # a redelivered result brings neither text nor thumbnail back
    async with engine.connect() as conn:
        assert await conn.scalar(select(post_sentiment.c.thumbnail).where(post_sentiment.c.post_id == "text-1")) is None
    assert (await post(engine, "text-1"))["text_excerpt"] == ""
    listed = await example_posts(engine, "textbrand", None, None, None, limit=10)
    assert [p["post_id"] for p in listed] == ["text-2"]


async def test_a_deleted_post_leaves_the_bucket_of_its_language(engine):
    german = result("unsup-del-1", ["langdel"], T0, "negative").model_copy(
        update={"language": "de", "language_supported": False})
    english = result("unsup-del-3", ["langdel"], T0, "neutral").model_copy(update={"language": "en"})
    await write_results(engine, [german, english, result("unsup-del-2", ["langdel"], T0, "positive")])
    applied = await write_deletions(engine, [deletion("unsup-del-1")])
    assert (applied.deleted, applied.buckets) == (1, [])  # the supported sums did not change: nothing for Redis
    assert await counts(engine, "langdel") == {g: [(0, 1, 1, 0)] for g in GRANULARITIES}
    for g in GRANULARITIES:
        [bucket] = await read_trends(engine, "langdel", g, language="de")
        assert (bucket.volume, bucket.removed) == (0, 1)

    applied = await write_deletions(engine, [deletion("unsup-del-3"), deletion("unsup-del-1")])
    assert applied.deleted == 1
    assert {(b.negative, b.neutral, b.positive, b.removed) for b in applied.buckets} == {(0, 0, 1, 1)}  # en + und
    assert await counts(engine, "langdel") == {g: [(0, 0, 1, 1)] for g in GRANULARITIES}
    assert [b.removed for b in await read_trends(engine, "langdel", "day", language="de")] == [1]  # not twice


async def test_a_result_and_its_deletion_written_at_once_never_both_count(engine):
    """Both orders, many times: the per-post locks make one transaction see the other's rows."""
    for i in range(20):
        r = result(f"race-{i}", ["racebrand"], T0, "positive")
        await asyncio.gather(write_results(engine, [r]), write_deletions(engine, [deletion(r.post_id)]))
    assert [b.volume for b in await read_trends(engine, "racebrand", "day")] in ([], [0])
    async with engine.connect() as conn:
        alive = await conn.scalar(select(func.count()).select_from(post_sentiment).where(
            post_sentiment.c.post_id.like("race-%"), post_sentiment.c.deleted_at.is_(None)))
    assert alive == 0


async def test_redis_keeps_the_snapshot_after_a_deletion_though_its_volume_is_lower(redis):
    """`changes` = volume + 2 x removed orders snapshots: each added or removed post raises it by one."""
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    before = TrendBucket(brand="cachedel", bucket_start=start, positive=2, negative=1, polarity_sum=1.0)
    after = before.model_copy(update={"negative": 0, "polarity_sum": 1.6, "removed": 1})
    newer = after.model_copy(update={"neutral": 1})
    for written in (before, after, before, newer, after):  # stale writes arrive late
        await cache_buckets(redis, [written], ttl_s=60, announce=False)
    assert await cached_series(redis, "cachedel", "minute") == [newer]
