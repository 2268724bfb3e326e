"""Redis in front of PostgreSQL: write-through, pub/sub, and a reader that survives a cold or dead Redis."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from monitor.sink.agent import CacheWriter
from monitor.sink.writer import write_results
from monitor.store.cache import cache_buckets, cached_series, is_warm, series_key, updates_channel, warm_key
from monitor.store.trend_reader import TrendReader
from monitor.store.trends import read_trends
from schemas import TrendBucket
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration
TTL_S = 3600


def recent(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


async def forget(redis, brand: str) -> None:
    for granularity in ("minute", "hour", "day"):
        await redis.delete(series_key(brand, granularity), warm_key(brand, granularity))


async def test_cold_read_repopulates_then_serves_from_redis(engine, redis):
    await write_results(engine, [result(f"cold-{i}", ["coldbrand"], recent(i * 3), "positive") for i in range(10)])
    await forget(redis, "coldbrand")
    reader = TrendReader(engine, redis, TTL_S)
    truth = await read_trends(engine, "coldbrand", "minute", since=recent(24 * 60 - 1))

    cold = await reader.read("coldbrand", "minute")
    assert (cold.source, cold.buckets) == ("postgres", truth)
    assert await is_warm(redis, "coldbrand", "minute")
    assert await cached_series(redis, "coldbrand", "minute") == truth  # repopulated

    warm = await reader.read("coldbrand", "minute")
    assert (warm.source, warm.buckets) == ("redis", truth)
    since = truth[3].bucket_start
    assert (await reader.read("coldbrand", "minute", since=since)).buckets == truth[3:]


async def test_reader_answers_from_postgres_while_redis_is_down(stack, engine, redis):
    await write_results(engine, [result(f"down-{i}", ["downbrand"], recent(i), "negative") for i in range(5)])
    reader = TrendReader(engine, redis, TTL_S)
    await reader.read("downbrand", "hour")  # warm
    stack.redis.stop()
    try:
        during = await reader.read("downbrand", "hour")
        truth = await read_trends(engine, "downbrand", "hour", since=recent(30 * 24 * 60 - 1))
        writer = CacheWriter(engine, redis, TTL_S)
        writer.stale_since = None
        changed = await write_results(engine, [result("down-late", ["downbrand"], recent(1), "positive")])
        await writer.write(changed)  # the sink keeps going; the lost write is remembered
        assert writer.stale_since is not None
    finally:
        stack.redis.start()
    assert during.source == "postgres"
    assert during.buckets == truth

    # Redis came back empty (no persistence): cold, so the reader repopulates it from PostgreSQL.
    after = await reader.read("downbrand", "hour")
    assert after.source == "postgres"
    assert sum(b.positive for b in after.buckets) == 1
    assert (await reader.read("downbrand", "hour")).source == "redis"

    # The sink's next write re-syncs what it missed, so even raw series readers see the late post.
    await redis.delete(series_key("downbrand", "minute"))
    await writer.write([])
    assert writer.stale_since is None
    minute_truth = await read_trends(engine, "downbrand", "minute", since=recent(60))
    assert await cached_series(redis, "downbrand", "minute") == minute_truth


async def test_out_of_order_writes_never_move_a_bucket_backwards(redis):
    start = recent(5).replace(second=0, microsecond=0)
    newer = TrendBucket(brand="orderbrand", bucket_start=start, positive=5, polarity_sum=4.0)
    older = TrendBucket(brand="orderbrand", bucket_start=start, positive=3, polarity_sum=2.4)
    await cache_buckets(redis, [newer], TTL_S)
    await cache_buckets(redis, [older], TTL_S)  # a slower sink's earlier snapshot arrives late
    await cache_buckets(redis, [newer], TTL_S)  # and a repeated write is harmless
    assert await cached_series(redis, "orderbrand") == [newer]


async def test_only_the_hot_window_is_cached(engine, redis):
    old = datetime.now(UTC) - timedelta(days=3)
    changed = await write_results(engine, [result("hot-1", ["hotbrand"], old, "positive"),
                                           result("hot-2", ["hotbrand"], recent(2), "positive")])
    await forget(redis, "hotbrand")
    await cache_buckets(redis, changed, TTL_S)
    assert [b.bucket_start for b in await cached_series(redis, "hotbrand", "minute")] == [
        b.bucket_start for b in changed if b.granularity == "minute" and b.bucket_start > old + timedelta(hours=1)]
    assert len(await cached_series(redis, "hotbrand", "hour")) == 2  # 30 days of hours
    assert 0 < await redis.ttl(series_key("hotbrand", "minute")) <= 24 * 3600
    reader = TrendReader(engine, redis, TTL_S)
    older = await reader.read("hotbrand", "minute", since=old - timedelta(minutes=1))
    assert older.source == "postgres" and len(older.buckets) == 2  # beyond the hot window: PostgreSQL


async def test_each_batch_is_announced_per_brand(redis):
    pubsub = redis.pubsub()
    await pubsub.subscribe(updates_channel("pubbrand"))
    try:
        await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)  # the subscribe confirmation
        bucket = TrendBucket(brand="pubbrand", bucket_start=recent(1).replace(second=0, microsecond=0), neutral=2)
        await cache_buckets(redis, [bucket], TTL_S)
        message = None
        for _ in range(50):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message:
                break
            await asyncio.sleep(0)
        assert message is not None
        body = json.loads(message["data"])
        assert body["brand"] == "pubbrand"
        assert [TrendBucket(**b) for b in body["buckets"]] == [bucket]
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
