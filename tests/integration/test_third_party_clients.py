"""A producer and a consumer that are not ours: confluent-kafka (librdkafka, the C client most non-Python
producers wrap) publishes posts and reads the worker's results through a consumer group, on every broker."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer, Producer

from core.process import ChildProcess
from core.streaming.topics import ensure_topics
from monitor.devstack.samples import sample_posts
from schemas import SentimentResult

pytestmark = pytest.mark.integration

POSTS = 40


def consume_until(config: dict, topic: str, wanted: set[str], timeout_s: float) -> tuple[set[str], float | None]:
    """Post ids of the results read by a librdkafka group consumer, and seconds until its first message."""
    consumer = Consumer(config)
    consumer.subscribe([topic])
    started, first, seen = time.monotonic(), None, set()
    try:
        while not wanted <= seen and time.monotonic() - started < timeout_s:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            first = first if first is not None else time.monotonic() - started
            seen.add(SentimentResult.model_validate_json(message.value()).post_id)
    finally:
        consumer.close()
    return seen, first


async def test_librdkafka_producer_and_group_consumer(stack, settings, tmp_path):
    topics = {"POSTS_TOPIC": "posts-rdkafka", "SENTIMENT_TOPIC": "sentiment-rdkafka", "DLQ_TOPIC": "dlq-rdkafka"}
    env = {**stack.env(), **topics, "WORKER_GROUP": "worker-rdkafka", "WORKER_MAX_BATCH": "8",
           "TOPIC_PARTITIONS": str(settings.kafka.topic_partitions)}
    local = settings.replace(**{name.lower(): value for name, value in topics.items()})
    await ensure_topics(local)
    posts = list(sample_posts(POSTS, seed=77, start=datetime(2026, 9, 1, tzinfo=UTC), image_share=0.2))
    wanted = {post.post_id for post in posts}

    producer = Producer({"bootstrap.servers": local.kafka.bootstrap, "acks": "all",
                         "enable.idempotence": local.kafka.idempotent_producer})
    for post in posts:
        producer.produce(local.kafka.posts_topic, value=post.model_dump_json().encode(), key=post.post_id.encode())
    assert producer.flush(60) == 0, "librdkafka could not deliver every post"

    worker = ChildProcess.monitor("worker", env, tmp_path / "worker.log").start()
    try:
        config = {"bootstrap.servers": local.kafka.bootstrap, "group.id": "rdkafka-results",
                  "auto.offset.reset": "earliest", "enable.auto.commit": True}
        seen, first_s = await asyncio.to_thread(consume_until, config, local.kafka.sentiment_topic, wanted, 240.0)
        worker.check_alive()
    finally:
        worker.stop()
    assert wanted <= seen, f"{len(wanted - seen)} results never reached the librdkafka consumer"
    assert first_s is not None
