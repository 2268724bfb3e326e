"""The broker restarts under a running worker and sink: both reconnect and count new posts exactly once.

The embedded Tansu broker keeps everything in memory, so a restart loses topics, messages and
committed offsets (a real Kafka keeps them on disk). What must hold here is what the code controls:
neither process crashes or wedges, both reconnect to the broker on the same port, and once the
topics are recreated (what `monitor worker`/`sink` do at start-up, and ops do with a wiped broker)
new posts flow to PostgreSQL again, counted exactly once next to the posts stored before.
"""

from __future__ import annotations

import asyncio

import pytest

from core.streaming.topics import ensure_topics
from monitor.devstack.samples import sample_posts
from tests.faults.helpers import assert_counted_once, drain, post_messages, produce, wait_stored

pytestmark = [pytest.mark.faults, pytest.mark.integration]

BEFORE = 60
AFTER = 120


async def test_broker_restart_clients_reconnect(fault_stack, fault_settings, fault_engine, pipeline, fault_report):
    posts = list(sample_posts(BEFORE + AFTER, seed=205))
    pipeline.start()
    await produce(fault_settings, post_messages(posts[:BEFORE]))
    await wait_stored(fault_engine, {p.post_id for p in posts[:BEFORE]}, pipeline)

    fault_stack.kafka.restart()  # same port; memory storage: topics, messages and offsets are gone
    await ensure_topics(fault_settings)
    for _ in range(12):  # both processes notice the broker went away, and stay up
        pipeline.check_alive()
        await asyncio.sleep(0.25)

    await produce(fault_settings, post_messages(posts[BEFORE:]))
    await wait_stored(fault_engine, {p.post_id for p in posts}, pipeline)
    await drain(fault_settings, fault_engine, pipeline)
    await assert_counted_once(fault_engine, posts, fault_report, "broker restarted (memory storage)",
                              before_restart=BEFORE, after_restart=AFTER)
