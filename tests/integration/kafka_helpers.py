"""Reading topics back in integration tests, outside any consumer group, so no test disturbs the pipeline's."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition


async def read_topic(settings, topic: str, until, timeout_s: float = 60.0) -> list:
    """Read a topic from the beginning, outside any consumer group, until `until(messages)` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    messages: list = []
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not until(messages):
            assert asyncio.get_running_loop().time() < deadline, f"{topic}: only {len(messages)} messages"
            batches = await consumer.getmany(timeout_ms=200)
            messages += [m for batch in batches.values() for m in batch]
    finally:
        await consumer.stop()
    return messages
