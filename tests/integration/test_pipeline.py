"""The whole slice on real servers: producer -> broker -> worker process -> sink process -> PostgreSQL + Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import select

from core.process import ChildProcess
from monitor.devstack.samples import BRANDS, sample_posts
from monitor.store.cache import cached_series
from monitor.store.db import post_sentiment
from monitor.store.trends import read_trends
from schemas import DeadLetter, SentimentResult
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

UNIQUE = 160
DUPLICATES = 40
BAD = {
    b"{this is not json": "invalid post",
    b'{"post_id": "x", "text": "no timestamp"}': "created_at",
    b'{"post_id": "y", "created_at": "2026-01-01T00:00:00Z", "text": "", "image": "aGVsbG8="}': "undecodable image",
}


async def stored_ids(engine, prefix: str) -> set[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(post_sentiment.c.post_id).where(post_sentiment.c.post_id.like(f"{prefix}%")))
        return {row[0] for row in rows}


async def wait_until(predicate, timeout_s: float = 90.0, children=()):
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        for child in children:
            child.check_alive()
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.2)


@pytest.fixture
def pipeline(stack, settings, tmp_path):
    env = {**stack.env(), "TOPIC_PARTITIONS": "4", "WORKER_MAX_BATCH": "16", "SINK_MAX_BATCH": "64"}
    children = [ChildProcess.monitor(role, env, tmp_path / f"{role}.log").start() for role in ("worker", "sink")]
    yield children
    for child in children:
        child.stop()


async def test_posts_flow_to_trends_exactly_once(settings, engine, redis, pipeline):
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)  # inside the Redis minute window
    posts = list(sample_posts(UNIQUE, seed=11, start=start))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for post in posts + posts[:DUPLICATES]:  # the first DUPLICATES posts are delivered twice
            await producer.send(settings.kafka.posts_topic, key=post.post_id.encode(),
                                value=post.model_dump_json().encode())
        for payload in BAD:
            await producer.send(settings.kafka.posts_topic, value=payload)
        await producer.flush()
    finally:
        await producer.stop()

    # Every post is scored at least once; every duplicate reaches the sentiment topic a second time.
    def all_results_out(messages):
        ids = Counter(SentimentResult.model_validate_json(m.value).post_id for m in messages)
        return sum(1 for p in posts if ids[p.post_id] >= 1) == UNIQUE and sum(
            1 for p in posts[:DUPLICATES] if ids[p.post_id] >= 2) == DUPLICATES

    await read_topic(settings, settings.kafka.sentiment_topic, all_results_out)

    # Barrier: the sink reads each partition in order, so once a marker written after the duplicates is stored
    # in every partition, the sink has processed every duplicate too.
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for partition in range(settings.kafka.topic_partitions):
            marker = SentimentResult(post_id=f"marker-{partition}", created_at=start, label="neutral",
                                     probabilities={"neutral": 1.0}, brands=["marker"], model_version="test",
                                     latency_ms=0)
            await producer.send_and_wait(settings.kafka.sentiment_topic, marker.model_dump_json().encode(),
                                         partition=partition)
    finally:
        await producer.stop()

    async def markers_stored():
        return len(await stored_ids(engine, "marker-")) == settings.kafka.topic_partitions

    await wait_until(markers_stored, children=pipeline)

    # Per-post rows: every unique post exactly once.
    assert await stored_ids(engine, "sample-11-") == {p.post_id for p in posts}

    # Buckets: volume per brand and minute equals an independent count of the unique posts sent.
    expected_volume = Counter((p.brands[0], p.created_at.replace(second=0, microsecond=0)) for p in posts)
    buckets = [b for brand in BRANDS for b in await read_trends(engine, brand)]
    assert Counter({(b.brand, b.bucket_start): b.volume for b in buckets}) == expected_volume

    # Redis mirrors PostgreSQL for every brand.
    for brand in BRANDS:
        assert await cached_series(redis, brand) == await read_trends(engine, brand)

    # Every bad message reached the dead-letter topic with its payload and a reason.
    dead = await read_topic(settings, settings.kafka.dlq_topic, lambda msgs: len(msgs) >= len(BAD))
    letters = {letter.payload: letter.reason for letter in (DeadLetter.model_validate_json(m.value) for m in dead)}
    for payload, reason in BAD.items():
        assert reason in letters[payload]


def test_created_at_spread_is_within_a_few_minutes():
    posts = list(sample_posts(50, seed=1, start=datetime(2026, 1, 1, tzinfo=UTC)))
    assert max(p.created_at for p in posts) - min(p.created_at for p in posts) <= timedelta(minutes=5)
