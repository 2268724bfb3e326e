"""Duplicate and out-of-order deliveries, and replays of old offset ranges: the counts do not move.

Three ways the same post reaches the sink again, all of which happen in production: a producer
retries (the same post twice on `posts`), someone re-publishes results already consumed (a replay
of an old `sentiment` range), and ops reset both consumer groups to the beginning (everything is
rescored and written again). Posts also arrive out of created_at order, some an hour late.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor

from monitor.devstack.samples import sample_posts
from schemas import SentimentResult
from tests.faults.helpers import (
    assert_counted_once,
    drain,
    post_messages,
    produce,
    read_all,
    stored_ids,
    wait_stored,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

ON_TIME = 150
LATE = 30
DUPLICATES = 60


class _FaustProtocol(RoundRobinPartitionAssignor):
    """The broker only lets a member join under the protocol the group already uses (Faust's); with no other
    member we lead the group, so the assignment format is ours to choose."""

    name = "faust"


async def reset_group(settings, group: str, topic: str) -> None:
    """`kafka-consumer-groups --reset-offsets --to-earliest` for a group with no live members: join it (the
    embedded broker only takes commits from members), take every partition, commit offset 0, leave."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka.bootstrap, group_id=group,
                                enable_auto_commit=False, session_timeout_ms=3000, heartbeat_interval_ms=500,
                                rebalance_timeout_ms=3000, partition_assignment_strategy=(_FaustProtocol,))
    await consumer.start()
    try:
        partitions = {TopicPartition(topic, p) for p in range(settings.kafka.topic_partitions)}
        while consumer.assignment() != partitions:
            await consumer.getmany(timeout_ms=200, max_records=1)
        await consumer.commit(dict.fromkeys(partitions, 0))
        for partition in partitions:
            assert await consumer.committed(partition) == 0
    finally:
        await consumer.stop()


async def test_duplicates_out_of_order_and_replays_change_nothing(fault_settings, fault_engine, pipeline,
                                                                   fault_report):
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    posts = list(sample_posts(ON_TIME, seed=206, start=now - timedelta(minutes=5)))
    posts += list(sample_posts(LATE, seed=207, start=now - timedelta(hours=1)))  # delivered last: an hour late
    ids = {p.post_id for p in posts}
    rng = random.Random(206)
    on_time = posts[:ON_TIME]
    rng.shuffle(on_time)  # created_at order scrambled
    deliveries = on_time + posts[ON_TIME:] + rng.sample(posts, DUPLICATES)
    rng.shuffle(deliveries[ON_TIME // 2:])  # duplicates interleaved with the second half

    pipeline.start()
    await produce(fault_settings, post_messages(deliveries))
    await wait_stored(fault_engine, ids, pipeline)

    # Replay 1: every result already consumed is published again.
    def results_of(messages) -> Counter:
        return Counter(SentimentResult.model_validate_json(m.value).post_id for m in messages)

    first = await read_all(fault_settings, fault_settings.kafka.sentiment_topic, lambda m: ids <= set(results_of(m)))
    await produce(fault_settings, [(m.key, m.value) for m in first], topic=fault_settings.kafka.sentiment_topic)

    # Replay 2: both consumer groups reset to the beginning: every post is rescored and every result re-read.
    pipeline.stop()
    await reset_group(fault_settings, "sentiment-worker", fault_settings.kafka.posts_topic)
    await reset_group(fault_settings, "sentiment-sink", fault_settings.kafka.sentiment_topic)
    pipeline.start()

    async def all_rescored() -> bool:
        counts = results_of(await read_all(fault_settings, fault_settings.kafka.sentiment_topic, lambda m: True,
                                           quiet_s=0.5))
        return all(counts[i] >= 3 for i in ids)  # first score, replayed copy, rescore

    await wait_until(all_rescored, timeout_s=180, pipeline=pipeline, what="every post rescored after the reset")
    await drain(fault_settings, fault_engine, pipeline)
    results_on_topic = sum(results_of(await read_all(fault_settings, fault_settings.kafka.sentiment_topic,
                                                     lambda m: True)).values())
    assert len(await stored_ids(fault_engine)) >= len(ids)
    await assert_counted_once(fault_engine, posts, fault_report, "duplicates, out-of-order, replays",
                              deliveries=len(deliveries), duplicate_deliveries=DUPLICATES, late_posts=LATE,
                              results_seen_by_sink=results_on_topic)
