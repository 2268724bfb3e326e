"""Scaling out: several `monitor worker` OS processes in one consumer group split the `posts` partitions.

This is what `docker compose up --scale worker=N` does in production, run here against the embedded broker.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from monitor.pipeline import ChildProcess
from monitor.samples import sample_posts
from schemas import SentimentResult
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

WORKERS = 3
POSTS_PER_PARTITION = 25
GROUP = "sentiment-worker"  # the worker app's id, see workers.agent.build_worker_app


async def group_members(settings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([GROUP])
        (group,) = response.groups
        _error, _name, state, *_rest, members = group
        return len(members) if state == "Stable" else 0
    finally:
        await admin.close()


async def test_worker_processes_split_partitions_and_score_every_post(stack, settings, engine, tmp_path):
    env = {**stack.env(), "TOPIC_PARTITIONS": str(settings.topic_partitions)}
    workers = [ChildProcess("worker", env, tmp_path / f"worker-{i}.log").start() for i in range(WORKERS)]
    try:
        deadline = asyncio.get_running_loop().time() + 120
        while await group_members(settings) != WORKERS:
            for worker in workers:
                worker.check_alive()
            assert asyncio.get_running_loop().time() < deadline, "workers never formed one stable group"
            await asyncio.sleep(0.5)

        start = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
        per_partition = {
            partition: list(sample_posts(POSTS_PER_PARTITION, seed=100 + partition, start=start))
            for partition in range(settings.topic_partitions)
        }
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for partition, posts in per_partition.items():  # every partition gets its own posts
                for post in posts:
                    await producer.send(settings.posts_topic, post.model_dump_json().encode(), partition=partition)
            await producer.flush()
        finally:
            await producer.stop()

        wanted = {post.post_id for posts in per_partition.values() for post in posts}

        def all_scored(messages) -> bool:
            return wanted <= {SentimentResult.model_validate_json(m.value).post_id for m in messages}

        results = await read_topic(settings, settings.sentiment_topic, all_scored, timeout_s=180)
        scored = Counter(SentimentResult.model_validate_json(m.value).post_id for m in results)
        assert all(scored[post_id] >= 1 for post_id in wanted)  # at-least-once: none lost, on any partition
        for worker in workers:
            worker.check_alive()
        assert await group_members(settings) == WORKERS  # nobody was kicked out while the work ran
    finally:
        for worker in workers:
            worker.stop()
