"""The effectively-once write path against real PostgreSQL: exact counts at minute, hour and day."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from monitor.sink.writer import write_results
from monitor.store.db import EXCERPT_CHARS, GRANULARITIES, post_sentiment, trend_bucket
from monitor.store.trends import read_trends
from schemas import LABELS
from tests.integration.trend_helpers import bucket_counts, expected_counts, result

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


async def test_duplicates_and_replays_count_once_at_every_granularity(engine):
    rng = random.Random(3)
    unique = [result(f"dup-{i}", rng.sample(["dupbrand", "dupother"], rng.randint(1, 2)),
                     T0 + timedelta(seconds=rng.uniform(0, 3 * 86400)), rng.choice(LABELS)) for i in range(400)]
    deliveries = unique + rng.sample(unique, 150)  # redelivered
    rng.shuffle(deliveries)
    for start in range(0, len(deliveries), 37):  # odd batch size: duplicates inside and across batches
        await write_results(engine, deliveries[start : start + 37])
    assert await write_results(engine, unique[:100]) == []  # an old offset range replayed changes nothing

    for granularity in GRANULARITIES:
        stored = [b for brand in ("dupbrand", "dupother") for b in await read_trends(engine, brand, granularity)]
        assert bucket_counts(stored) == expected_counts(unique, granularity), granularity
        assert sum(b.volume for b in stored) == sum(len(r.brands) for r in unique)


async def test_changed_buckets_come_back_with_their_new_totals(engine):
    first = await write_results(engine, [result("tot-1", ["totbrand"], T0, "positive")])
    second = await write_results(engine, [result("tot-2", ["totbrand"], T0 + timedelta(seconds=5), "negative")])
    assert {b.granularity for b in first} == set(GRANULARITIES)
    assert all((b.positive, b.negative) == (1, 1) for b in second)  # absolute totals, not increments


async def test_bucket_boundaries_and_time_zones(engine):
    plus2, minus5 = timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))
    await write_results(engine, [
        result("tz-1", ["tzbrand"], datetime(2026, 5, 4, 23, 59, 59, 999000, tzinfo=UTC), "positive"),
        result("tz-2", ["tzbrand"], datetime(2026, 5, 5, 0, 0, 0, tzinfo=UTC), "negative"),
        result("tz-3", ["tzbrand"], datetime(2026, 5, 5, 1, 30, tzinfo=plus2), "neutral"),  # 2026-05-04 23:30 UTC
        result("tz-4", ["tzbrand"], datetime(2026, 5, 4, 20, 0, 30, tzinfo=minus5), "neutral"),  # 05-05 01:00:30 UTC
    ])
    day = {b.bucket_start: b for b in await read_trends(engine, "tzbrand", "day")}
    assert {k: (b.negative, b.neutral, b.positive) for k, b in day.items()} == {
        datetime(2026, 5, 4, tzinfo=UTC): (0, 1, 1), datetime(2026, 5, 5, tzinfo=UTC): (1, 1, 0)}
    hour = {b.bucket_start: b.volume for b in await read_trends(engine, "tzbrand", "hour")}
    assert hour == {datetime(2026, 5, 4, 23, tzinfo=UTC): 2, datetime(2026, 5, 5, 0, tzinfo=UTC): 1,
                    datetime(2026, 5, 5, 1, tzinfo=UTC): 1}
    minute = {b.bucket_start: b.volume for b in await read_trends(engine, "tzbrand", "minute")}
    assert minute[datetime(2026, 5, 4, 23, 59, tzinfo=UTC)] == 1
    assert minute[datetime(2026, 5, 5, 0, 0, tzinfo=UTC)] == 1


async def test_late_posts_land_in_their_own_bucket(engine):
    await write_results(engine, [result("late-1", ["latebrand"], T0 + timedelta(days=2), "positive")])
    await write_results(engine, [result("late-2", ["latebrand"], T0, "negative")])  # arrives two days late
    day = {b.bucket_start: (b.negative, b.positive) for b in await read_trends(engine, "latebrand", "day")}
    assert day == {datetime(2026, 5, 4, tzinfo=UTC): (1, 0), datetime(2026, 5, 6, tzinfo=UTC): (0, 1)}


async def test_one_post_counts_for_each_of_its_brands(engine):
    changed = await write_results(engine, [result("multi-1", ["brand-a", "brand-b"], T0, "positive")])
    assert sorted({b.brand for b in changed}) == ["brand-a", "brand-b"]
    assert [b.positive for b in await read_trends(engine, "brand-b", "hour")] == [1]


async def test_post_row_keeps_what_analysts_need(engine):
    posted = result("row-1", ["rowbrand"], T0, "neutral", text="x" * 1000, keywords=["kw1", "kw2"])
    posted = posted.model_copy(update={"image_ref": "sha256:abc"})
    await write_results(engine, [posted])
    async with engine.connect() as conn:
        row = (await conn.execute(select(post_sentiment).where(post_sentiment.c.post_id == "row-1"))).mappings().one()
    assert row["keywords"] == ["kw1", "kw2"] and row["image_ref"] == "sha256:abc"
    assert row["text_excerpt"] == "x" * EXCERPT_CHARS and row["full_text"] == "x" * 1000
    assert row["brands"] == row["tagged_brands"] == ["rowbrand"]
    assert row["created_at"] == T0 and row["processed_at"] is not None
    assert row["polarity"] == pytest.approx(0.0) and row["p_neutral"] == pytest.approx(0.8)


async def test_a_thumbnail_is_stored_once_in_its_post_row(engine):
    with_image = result("thumb-1", ["thumbbrand"], T0, "positive").model_copy(
        update={"image_ref": "sha256:ab", "thumbnail": b"\xff\xd8first"})
    redelivered = with_image.model_copy(update={"thumbnail": b"\xff\xd8again"})
    text_only = result("thumb-2", ["thumbbrand"], T0, "negative")
    await write_results(engine, [with_image, text_only])
    await write_results(engine, [redelivered])
    async with engine.connect() as conn:
        rows = (await conn.execute(select(post_sentiment.c.post_id, post_sentiment.c.thumbnail).where(
            post_sentiment.c.post_id.in_(["thumb-1", "thumb-2"])).order_by(post_sentiment.c.post_id))).all()
    assert rows == [("thumb-1", b"\xff\xd8first"), ("thumb-2", None)]  # the first delivery's, as for the rest


async def test_posts_in_unsupported_languages_are_counted_apart_from_the_default_trends(engine):
    english = result("lang-1", ["langbrand"], T0, "positive").model_copy(update={"language": "en"})
    german = result("lang-2", ["langbrand"], T0, "negative").model_copy(
        update={"language": "de", "language_supported": False})
    unknown = result("lang-3", ["langbrand"], T0, "neutral")  # too short to tell: counted as before
    changed = await write_results(engine, [english, german, unknown])
    assert {(b.negative, b.neutral, b.positive) for b in changed} == {(0, 1, 1)}  # what Redis gets: supported only
    buckets = await read_trends(engine, "langbrand", "minute")
    assert [(b.negative, b.neutral, b.positive) for b in buckets] == [(0, 1, 1)]
    for language, counts in (("de", (1, 0, 0)), ("en", (0, 0, 1)), ("und", (0, 1, 0))):
        for granularity in GRANULARITIES:
            [bucket] = await read_trends(engine, "langbrand", granularity, language=language)
            assert (bucket.negative, bucket.neutral, bucket.positive) == counts, (language, granularity)
    assert await read_trends(engine, "langbrand", "minute", language="fr") == []
    async with engine.connect() as conn:
        rows = (await conn.execute(select(post_sentiment.c.post_id, post_sentiment.c.language,
                                          post_sentiment.c.language_supported)
                                   .where(post_sentiment.c.post_id.like("lang-%"))
                                   .order_by(post_sentiment.c.post_id))).all()
        keys = (await conn.execute(select(trend_bucket.c.language, trend_bucket.c.language_supported).where(
            trend_bucket.c.brand == "langbrand", trend_bucket.c.granularity == "day"))).all()
    assert [tuple(r) for r in rows] == [("lang-1", "en", True), ("lang-2", "de", False), ("lang-3", None, True)]
    assert sorted(tuple(k) for k in keys) == [("de", False), ("en", True), ("und", True)]

    more_german = result("lang-4", ["langbrand"], T0, "positive").model_copy(
        update={"language": "de", "language_supported": False})
    assert await write_results(engine, [more_german, german]) == []  # no supported sum changed: nothing for Redis
    [bucket] = await read_trends(engine, "langbrand", "hour", language="de")
    assert (bucket.negative, bucket.positive) == (1, 1)


async def test_concurrent_sinks_read_back_exact_supported_sums(engine):
    """Two languages in one bucket are two rows that two transactions may change at once: the bucket lock orders
    them, so each returns a distinct supported total, and the newest snapshot (Redis keeps it) is the truth."""
    posts = [result(f"conc-{i}", ["concbrand"], T0 + timedelta(seconds=i), "positive").model_copy(
        update={"language": ("en", None, "es")[i % 3]}) for i in range(24)]
    returned = await asyncio.gather(*(write_results(engine, [p]) for p in posts))
    day = [b for changed in returned for b in changed if b.granularity == "day"]
    assert sorted(b.volume for b in day) == list(range(1, len(posts) + 1))
    [truth] = await read_trends(engine, "concbrand", "day")
    assert max(day, key=lambda b: b.volume) == truth
