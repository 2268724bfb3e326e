"""Done-when for effectively-once trends: the real `monitor sink` process, duplicates, a crash and a restart.

Results are published straight to the `sentiment` topic (the worker is tested elsewhere), so every
label is known and each bucket can be counted independently from the unique posts.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from core.process import ChildProcess
from monitor.store.brand_rules import BrandMatcher, BrandRule
from monitor.store.brands import TrackedBrand, add_brand, remove_brand
from monitor.store.cache import cached_series, hot_since
from monitor.store.db import GRANULARITIES, post_sentiment
from monitor.store.trends import read_trends
from schemas import LABELS, SentimentResult
from tests.integration.trend_helpers import bucket_counts, expected_counts, result

pytestmark = pytest.mark.integration

TAGS = ("e2e-north", "e2e-south")
RULE = TrackedBrand(name="zorblax", hashtags=["zorblove"])
BRANDS = (*TAGS, RULE.name)
PREFIX = "e2e-"


def make_results(rng: random.Random, start: int, count: int, now: datetime) -> list[SentimentResult]:
    """Mostly recent posts (minute buckets cached), some days late (hour/day buckets only)."""
    out = []
    for i in range(start, start + count):
        late = rng.random() < 0.15
        created = now - (timedelta(days=rng.uniform(1.1, 5)) if late else timedelta(minutes=rng.uniform(1, 90)))
        text = rng.choice(["Zorblax is great", "meh #ZorbLove", "zorblaxville weather", "nothing to see"])
        out.append(result(f"{PREFIX}{i}", rng.sample(TAGS, rng.randint(0, 2)), created, rng.choice(LABELS),
                          text=text))
    return out


async def publish(settings, results: list[SentimentResult], one_per_partition: bool = False) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for i, r in enumerate(results):
            await producer.send(settings.kafka.sentiment_topic, key=r.post_id.encode(),
                                value=r.model_dump_json().encode(), partition=i if one_per_partition else None)
        await producer.flush()
    finally:
        await producer.stop()


async def stored(engine) -> int:
    async with engine.connect() as conn:
        query = select(func.count()).select_from(post_sentiment).where(post_sentiment.c.post_id.like(f"{PREFIX}%"))
        return (await conn.execute(query)).scalar_one()


async def wait_for(predicate, sink: ChildProcess, timeout_s: float = 180.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        sink.check_alive()
        assert asyncio.get_running_loop().time() < deadline, f"timed out; sink log:\n{sink.log_tail()}"
        await asyncio.sleep(0.25)


async def test_sink_process_counts_every_post_once_across_duplicates_and_restarts(stack, settings, engine, redis,
                                                                                  tmp_path):
    rng = random.Random(2026)
    now = datetime.now(UTC)
    env = {**stack.env(), "TOPIC_PARTITIONS": str(settings.kafka.topic_partitions), "SINK_MAX_BATCH": "16"}
    phase1 = make_results(rng, 0, 300, now)
    phase2 = make_results(rng, 300, 300, now)

    first = ChildProcess.monitor("sink", env, tmp_path / "sink-1.log").start()
    second = ChildProcess.monitor("sink", env, tmp_path / "sink-2.log")
    try:
        await publish(settings, phase1[:150] + rng.sample(phase1[:150], 40))
        await wait_for(lambda: _at_least(engine, 50), first)
        first.proc.kill()  # a crash mid-stream: uncommitted offsets are delivered again to the next sink
        first.proc.wait()
        await publish(settings, phase1[150:] + rng.sample(phase1, 40))  # while no sink runs
        second.start()
        await wait_for(lambda: _at_least(engine, len(phase1)), second)

        await add_brand(engine, RULE)  # while the sink runs: applies to phase 2 only
        await publish(settings, phase2 + rng.sample(phase2, 50) + rng.sample(phase1, 50))  # replays of both phases
        await wait_for(lambda: _at_least(engine, len(phase1) + len(phase2)), second)
        markers = [result(f"{PREFIX}marker-{p}", ["e2e-marker"], now, "neutral")
                   for p in range(settings.kafka.topic_partitions)]
        await publish(settings, markers, one_per_partition=True)  # once all are stored, every replay was processed
        await wait_for(lambda: _at_least(engine, len(phase1) + len(phase2) + len(markers)), second)

        rule = BrandMatcher([BrandRule(RULE.name, hashtags=tuple(RULE.hashtags))])

        def brands_of(r: SentimentResult) -> list[str]:
            matched = rule.match(r.text) if r.post_id in phase2_ids else set()
            return sorted(set(r.brands) | matched)

        phase2_ids = {r.post_id for r in phase2}
        unique = phase1 + phase2
        for granularity in GRANULARITIES:
            expected = expected_counts(unique, granularity, brands_of)
            in_postgres = [b for brand in BRANDS for b in await read_trends(engine, brand, granularity)]
            assert bucket_counts(in_postgres) == expected, granularity

            window = hot_since(granularity, datetime.now(UTC))
            hot = +type(expected)({k: v for k, v in expected.items() if k[1] >= window})

            async def redis_matches(hot=hot, granularity=granularity, window=window) -> bool:
                cached = [b for brand in BRANDS for b in await cached_series(redis, brand, granularity, since=window)]
                return bucket_counts(cached) == hot

            await wait_for(redis_matches, second, timeout_s=30)  # the cache write follows the commit
        assert sum(expected_counts(unique, "day", brands_of).values()) > len(unique)  # multi-brand posts exist
        assert any(r.created_at < now - timedelta(days=1) for r in unique)  # and late ones
    finally:
        await remove_brand(engine, RULE.name)
        first.stop()
        second.stop()


async def _at_least(engine, count: int) -> bool:
    return await stored(engine) >= count
