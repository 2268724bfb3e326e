"""Reading topics back in integration tests, outside any consumer group, so no test disturbs the pipeline's."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(settings, topic: str, until, timeout_s: float = 60.0, quiet_s: float = 0.0) -> list:
    """Read a topic from the beginning, outside any consumer group, until `until(messages)` holds (and then
    `quiet_s` passed with nothing new: for a topic nobody writes to any more, to catch late duplicates)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    messages: list = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.kafka.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        loop = asyncio.get_running_loop()
        deadline, quiet_since = loop.time() + timeout_s, loop.time()
        while not until(messages) or loop.time() - quiet_since < quiet_s:
            assert loop.time() < deadline, f"{topic}: only {len(messages)} messages"
            batch = [m for part in (await consumer.getmany(timeout_ms=200)).values() for m in part]
            if batch:
                messages += batch
                quiet_since = loop.time()
    finally:
        await consumer.stop()
    return messages
