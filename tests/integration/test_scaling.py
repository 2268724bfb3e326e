"""Scaling out: several `monitor worker` OS processes in one consumer group split the `posts` partitions.

This is what `docker compose up --scale worker=N` does in production, run here against the embedded broker.
Which worker owns which partition is read from each worker's own /metrics, since the embedded broker's
DescribeGroups answers with members but without their assignments.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from benchmarks.report import device_name
from core.process import ChildProcess, free_port
from core.settings import WorkerSettings
from monitor.devstack.samples import sample_posts
from schemas import SentimentResult
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

WORKERS = 3
POSTS_PER_PARTITION = 25
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "scaling-cpu.json"
"""Written when SCALING_REPORT=1: `SCALING_REPORT=1 .venv/bin/pytest -s tests/integration/test_scaling.py`."""
GROUP = WorkerSettings.model_fields["group"].default  # the workers' consumer group (WORKER_GROUP)


async def group_members(settings) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([GROUP])
        (group,) = response.groups
        _error, _name, state, *_rest, members = group
        return len(members) if state == "Stable" else 0
    finally:
        await admin.close()


async def assigned_partitions(port: int) -> set[int]:
    """The partitions a worker reports owning on its /metrics (monitor_worker_assigned_partition)."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    return {int(match) for match in re.findall(r'monitor_worker_assigned_partition\{partition="(\d+)"', text)}


async def test_worker_processes_split_partitions_and_score_every_post(stack, settings, engine, tmp_path):
    env = {**stack.env(), "TOPIC_PARTITIONS": str(settings.kafka.topic_partitions)}
    ports = [free_port() for _ in range(WORKERS)]
    workers = [ChildProcess.monitor("worker", {**env, "METRICS_PORT": str(port)}, tmp_path / f"worker-{i}.log").start()
               for i, port in enumerate(ports)]
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
            for partition in range(settings.kafka.topic_partitions)
        }
        started = time.monotonic()
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
        await producer.start()
        try:
            for partition, posts in per_partition.items():  # every partition gets its own posts
                for post in posts:
                    await producer.send(settings.kafka.posts_topic, post.model_dump_json().encode(),
                                        partition=partition)
            await producer.flush()
        finally:
            await producer.stop()

        wanted = {post.post_id for posts in per_partition.values() for post in posts}

        def all_scored(messages) -> bool:
            return wanted <= {SentimentResult.model_validate_json(m.value).post_id for m in messages}

        results = await read_topic(settings, settings.kafka.sentiment_topic, all_scored, timeout_s=180)
        elapsed = time.monotonic() - started
        scored = Counter(SentimentResult.model_validate_json(m.value).post_id for m in results)
        assert all(scored[post_id] >= 1 for post_id in wanted)  # at-least-once: none lost, on any partition
        for worker in workers:
            worker.check_alive()
        assert await group_members(settings) == WORKERS  # nobody was kicked out while the work ran

        # Each worker reports the partitions it owns (every 5 s): together all of them, none twice.
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            owned = [await assigned_partitions(port) for port in ports]
            if sum(map(len, owned)) >= settings.kafka.topic_partitions or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(1)
        assert set().union(*owned) == set(range(settings.kafka.topic_partitions))
        assert sum(map(len, owned)) == settings.kafka.topic_partitions, f"a partition is owned twice: {owned}"
        assert all(owned), f"a worker owns no partition: {owned}"
        report = {"workers": WORKERS, "partitions": settings.kafka.topic_partitions, "posts": len(wanted),
                  "partitions_per_worker": [sorted(parts) for parts in owned],
                  "seconds_produce_to_all_scored": round(elapsed, 2),
                  "posts_per_s": round(len(wanted) / elapsed, 1), "model": "bootstrap (default MODEL_CHECKPOINT)",
                  "device": device_name()}
        print(f"scaling: {report}")
        if os.environ.get("SCALING_REPORT"):
            RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    finally:
        for worker in workers:
            worker.stop()
