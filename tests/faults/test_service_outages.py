"""PostgreSQL and Redis outages while posts keep arriving: the sink rides them out, nothing is lost.

PostgreSQL is the truth: while it is down the sink retries the same batch with capped backoff
(never skips it, never crashes), and its offsets stay uncommitted. Redis is only a cache: while it
is down the sink keeps writing PostgreSQL and readers answer from PostgreSQL; when it returns
(empty, it has no persistence) the sink and the readers repopulate it.
"""

from __future__ import annotations

import asyncio

import pytest

from monitor.devstack.samples import BRANDS, sample_posts
from monitor.store.cache import cached_series, hot_since
from monitor.store.trend_reader import TrendReader
from monitor.store.trends import read_trends
from tests.faults.helpers import (
    WARM_UP,
    assert_counted_once,
    drain,
    post_messages,
    produce,
    start_warm,
    stored_ids,
    wait_stored,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

POSTS = 200
OUTAGE_S = 6.0


async def hold(seconds: float, pipeline) -> None:
    """Wait while checking every process stays up: a crash loop fails the scenario."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        pipeline.check_alive()
        await asyncio.sleep(0.25)


async def test_postgres_outage_while_posts_arrive(fault_stack, fault_settings, fault_engine, pipeline, fault_report):
    posts = list(sample_posts(POSTS, seed=203))
    await start_warm(fault_settings, fault_engine, pipeline, posts)
    producing = asyncio.create_task(produce(fault_settings, post_messages(posts[WARM_UP:]), rate_per_s=30))

    async def under_way() -> bool:
        return len(await stored_ids(fault_engine)) >= WARM_UP + 20

    await wait_until(under_way, pipeline=pipeline, what="posts flowing")
    fault_stack.postgres.stop()  # fast shutdown: every sink connection is cut
    await hold(OUTAGE_S, pipeline)
    stored_during_outage = len(await stored_ids(fault_engine))  # 0: unreadable
    fault_stack.postgres.start()  # same port, same data
    await producing
    await wait_stored(fault_engine, {p.post_id for p in posts}, pipeline)
    retries = pipeline.log_text("sink").count("write failed, retrying")
    assert retries >= 1, "the sink should have hit the outage and retried"
    await drain(fault_settings, fault_engine, pipeline)
    await assert_counted_once(fault_engine, posts, fault_report, "PostgreSQL stopped and restarted",
                              outage_s=OUTAGE_S, sink_retries=retries, readable_during_outage=stored_during_outage > 0)


async def test_redis_outage_reader_falls_back_and_cache_repopulates(fault_stack, fault_settings, fault_engine,
                                                                    fault_redis, pipeline, fault_report):
    posts = list(sample_posts(POSTS, seed=204))
    reader = TrendReader(fault_engine, fault_redis, fault_settings.store.redis_series_ttl_s)
    await start_warm(fault_settings, fault_engine, pipeline, posts)

    async def truth(brand: str):
        return await read_trends(fault_engine, brand, "minute", since=hot_since("minute"))

    for brand in BRANDS:  # warm the cache: first read loads it from PostgreSQL, the next is served by Redis
        await reader.read(brand)
        assert (await reader.read(brand)).source == "redis"

    fault_stack.redis.stop()
    await produce(fault_settings, post_messages(posts[WARM_UP:WARM_UP + 100]))
    await wait_stored(fault_engine, {p.post_id for p in posts[:WARM_UP + 100]}, pipeline)  # the sink never stalls
    for brand in BRANDS:
        read = await reader.read(brand)
        assert (read.source, read.buckets) == ("postgres", await truth(brand))
    cache_skips = pipeline.log_text("sink").count("redis cache update skipped")

    fault_stack.redis.start()  # back on the same port, empty
    for brand in BRANDS:  # cold: answered from PostgreSQL and repopulated; then served from Redis
        assert (await reader.read(brand)).source == "postgres"
        read = await reader.read(brand)
        assert (read.source, read.buckets) == ("redis", await truth(brand))

    await produce(fault_settings, post_messages(posts[WARM_UP + 100:]))
    await wait_stored(fault_engine, {p.post_id for p in posts}, pipeline)
    await drain(fault_settings, fault_engine, pipeline)
    for brand in BRANDS:  # the sink's write-through (and its re-sync after the outage) kept Redis exact
        assert await cached_series(fault_redis, brand) == await truth(brand)
    await assert_counted_once(fault_engine, posts, fault_report, "Redis stopped and restarted",
                              sink_cache_skips=cache_skips)
