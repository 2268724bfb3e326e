"""Deletions through the real `monitor sink` process and the embedded broker: PostgreSQL, Redis and the DLQ.

The sink runs on topics and a consumer group of its own, so the other sink tests' messages never reach it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from core.process import ChildProcess, free_port
from core.streaming.topics import ensure_topics
from monitor.store.cache import cached_series
from monitor.store.db import GRANULARITIES, post_deletion, post_sentiment
from monitor.store.trends import read_trends
from schemas import DeadLetter, PostDeletion
from schemas.reasons import ReasonCode
from tests.integration.kafka_helpers import read_topic
from tests.integration.test_sink_process import wait_for
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration
BRAND = "sinkdel"


async def send(settings, topic: str, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(topic, key=key.encode(), value=value)
        await producer.flush()
    finally:
        await producer.stop()


async def test_the_sink_applies_deletions_once_and_dead_letters_bad_ones(stack, settings, engine, redis, tmp_path):
    topics = {"SENTIMENT_TOPIC": "sinkdel-sentiment", "DLQ_TOPIC": "sinkdel-dlq",
              "DELETIONS_TOPIC": "sinkdel-deletions"}
    local = settings.replace(**{name.lower(): value for name, value in topics.items()})
    await ensure_topics(local)
    port = free_port()
    env = {**stack.env(), **topics, "SINK_GROUP": "sinkdel-sink", "METRICS_PORT": str(port),
           "TOPIC_PARTITIONS": str(settings.kafka.topic_partitions)}
    now = datetime.now(UTC).replace(second=30, microsecond=0) - timedelta(minutes=5)
    results = [result(f"sinkdel-{i}", [BRAND], now, label) for i, label in
               enumerate(["positive", "positive", "negative", "neutral"])]
    gone_at = datetime.now(UTC)

    def deletion(post_id: str) -> tuple[str, bytes]:
        return post_id, PostDeletion(post_id=post_id, deleted_at=gone_at, source="bluesky").model_dump_json().encode()

    sink = ChildProcess.monitor("sink", env, tmp_path / "sink.log").start()
    try:
        await send(local, local.kafka.sentiment_topic, [(r.post_id, r.model_dump_json().encode()) for r in results[:3]])

        async def all_stored() -> bool:
            async with engine.connect() as conn:
                ids = (await conn.execute(select(post_sentiment.c.post_id).where(
                    post_sentiment.c.post_id.like("sinkdel-%")))).scalars().all()
            return len(ids) == 3

        await wait_for(all_stored, sink)
        await send(local, local.kafka.deletions_topic, [
            deletion("sinkdel-0"), deletion("sinkdel-2"), deletion("sinkdel-0"),  # one reported twice
            deletion("sinkdel-3"),  # before its result
            ("sinkdel-bad", b'{"post_id": "sinkdel-1"}'),  # no deleted_at: not a PostDeletion
        ])

        async def all_recorded() -> bool:
            async with engine.connect() as conn:
                ids = (await conn.execute(select(post_deletion.c.post_id).where(
                    post_deletion.c.post_id.like("sinkdel-%")))).scalars().all()
            return len(ids) == 3

        await wait_for(all_recorded, sink)
        await send(local, local.kafka.sentiment_topic, [(r.post_id, r.model_dump_json().encode()) for r in results])

        expected = [(0, 0, 1, 2)]  # one positive left of four posts; two subtracted, one never counted

        async def postgres_done() -> bool:
            minute = await read_trends(engine, BRAND, "minute")
            return [(b.negative, b.neutral, b.positive, b.removed) for b in minute] == expected

        await wait_for(postgres_done, sink, timeout_s=60)
        for granularity in GRANULARITIES:
            buckets = await read_trends(engine, BRAND, granularity)
            assert [(b.negative, b.neutral, b.positive, b.removed) for b in buckets] == expected, granularity

        async def redis_done() -> bool:
            cached = await cached_series(redis, BRAND, "minute")
            return [(b.negative, b.neutral, b.positive, b.removed) for b in cached] == expected

        await wait_for(redis_done, sink, timeout_s=30)  # the lower totals replaced the higher ones

        [letter] = await read_topic(local, local.kafka.dlq_topic, lambda messages: len(messages) >= 1, quiet_s=0.5)
        dead = DeadLetter.model_validate_json(letter.value)
        assert (dead.code, dead.topic, dead.key) == (ReasonCode.INVALID_DELETION, local.kafka.deletions_topic,
                                                     b"sinkdel-bad")
        assert dict(letter.headers)["reason.code"] == b"invalid_deletion"

        async with httpx.AsyncClient() as client:
            exposed = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
        metrics = {s.labels["outcome"]: s.value for family in text_string_to_metric_families(exposed)
                   for s in family.samples if s.name == "monitor_sink_deletions_total"}
        assert metrics == {"deleted": 2, "recorded": 1, "repeated": 1}
    finally:
        sink.stop()
