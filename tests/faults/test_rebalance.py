"""Scaling out mid-stream: one worker, then a second, a third and a fourth join its group while posts flow on
twelve partitions. Every join is a rebalance that revokes partitions with batches in flight; every post must still
be stored and counted exactly once."""

from __future__ import annotations

import asyncio

import pytest

from core.process import ChildProcess
from core.streaming.topics import ensure_topics
from monitor.devstack.samples import sample_posts
from tests.faults.conftest import CHILD_ENV
from tests.faults.helpers import Pipeline, assert_counted_once, drain, post_messages, produce, wait_stored

pytestmark = [pytest.mark.faults, pytest.mark.integration]

PARTITIONS = 12
POSTS = 480
WORKERS = 4


async def test_workers_joining_mid_stream_lose_and_double_count_nothing(fault_stack, fault_settings, fault_engine,
                                                                        tmp_path, fault_report):
    topics = {"POSTS_TOPIC": "posts-rebalance", "SENTIMENT_TOPIC": "sentiment-rebalance",
              "DLQ_TOPIC": "dlq-rebalance", "TOPIC_PARTITIONS": str(PARTITIONS)}
    settings = fault_settings.replace(**topics)
    await ensure_topics(settings)
    env = {**fault_stack.env(), **CHILD_ENV, **topics}
    pipeline = Pipeline(env, tmp_path / "logs").start()
    joined: list[ChildProcess] = []
    posts = list(sample_posts(POSTS, seed=404))
    try:
        producing = asyncio.create_task(produce(settings, post_messages(posts), rate_per_s=60))
        for n in range(2, WORKERS + 1):
            await asyncio.sleep(1.5)
            joined.append(ChildProcess.monitor("worker", env, tmp_path / "logs" / f"worker-{n}.log").start())
        await producing
        for worker in joined:
            worker.check_alive()
        await wait_stored(fault_engine, {p.post_id for p in posts}, pipeline, timeout_s=240)
        for worker in joined:
            worker.stop()
        await drain(settings, fault_engine, pipeline)
        await assert_counted_once(fault_engine, posts, fault_report, "rebalances: 1 to 4 workers mid-stream",
                                  partitions=PARTITIONS, workers=WORKERS)
    finally:
        for worker in joined:
            worker.stop()
        pipeline.stop()
