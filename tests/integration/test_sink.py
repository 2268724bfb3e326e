"""The effectively-once write path against real PostgreSQL and Redis."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.cache import cache_buckets, cached_series
from monitor.sink import write_results
from monitor.trends import read_trends
from schemas import LABELS, SentimentResult

pytestmark = pytest.mark.integration
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def result(post_id: str, brand: str, created_at: datetime, label: str) -> SentimentResult:
    probs = {lab: (0.8 if lab == label else 0.1) for lab in LABELS}
    return SentimentResult(post_id=post_id, created_at=created_at, label=label, probabilities=probs,
                           brands=[brand], model_version="test", latency_ms=0.5)


async def test_duplicates_and_replays_count_once(engine, redis):
    rng = random.Random(3)
    unique = [result(f"dup-{i}", "dupbrand", T0 + timedelta(seconds=rng.uniform(0, 600)), rng.choice(LABELS))
              for i in range(300)]
    deliveries = unique + rng.sample(unique, 120)  # redelivered
    rng.shuffle(deliveries)
    for start in range(0, len(deliveries), 37):  # odd batch size: duplicates inside and across batches
        await write_results(engine, deliveries[start : start + 37])
    replayed = await write_results(engine, unique[:100])  # an old offset range replayed
    assert replayed == []

    expected = Counter((r.created_at.replace(second=0, microsecond=0), r.label.value) for r in unique)
    buckets = await read_trends(engine, "dupbrand")
    actual = Counter()
    for b in buckets:
        actual.update({(b.bucket_start, "negative"): b.negative, (b.bucket_start, "neutral"): b.neutral,
                       (b.bucket_start, "positive"): b.positive})
    assert +actual == expected
    assert sum(b.volume for b in buckets) == 300

    await cache_buckets(redis, buckets, ttl_s=60)
    assert await cached_series(redis, "dupbrand") == buckets


async def test_bucket_boundaries_and_time_zones(engine):
    plus2 = timezone(timedelta(hours=2))
    await write_results(engine, [
        result("tz-1", "tzbrand", datetime(2026, 5, 4, 9, 59, 59, 999000, tzinfo=UTC), "positive"),
        result("tz-2", "tzbrand", datetime(2026, 5, 4, 10, 0, 0, tzinfo=UTC), "negative"),
        result("tz-3", "tzbrand", datetime(2026, 5, 4, 12, 0, 30, tzinfo=plus2), "neutral"),  # 10:00:30 UTC
    ])
    buckets = {b.bucket_start: b for b in await read_trends(engine, "tzbrand")}
    assert set(buckets) == {datetime(2026, 5, 4, 9, 59, tzinfo=UTC), datetime(2026, 5, 4, 10, 0, tzinfo=UTC)}
    assert buckets[datetime(2026, 5, 4, 9, 59, tzinfo=UTC)].positive == 1
    ten = buckets[datetime(2026, 5, 4, 10, 0, tzinfo=UTC)]
    assert (ten.negative, ten.neutral, ten.positive) == (1, 1, 0)


async def test_one_post_counts_for_each_of_its_brands(engine):
    multi = result("multi-1", "brand-a", T0, "positive").model_copy(update={"brands": ["brand-a", "brand-b"]})
    changed = await write_results(engine, [multi])
    assert sorted(b.brand for b in changed) == ["brand-a", "brand-b"]
    assert [b.positive for b in await read_trends(engine, "brand-b")] == [1]
