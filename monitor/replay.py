"""Publish posts to the `posts` topic with a plain Kafka producer, as any external producer would."""

from __future__ import annotations

from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from tqdm import tqdm

from monitor.settings import Settings
from monitor.streaming import require_bootstrap


async def publish(settings: Settings, payloads: Iterable[tuple[bytes, bytes]], total: int | None = None,
                  progress: bool = True) -> int:
    """Send (key, value) pairs and wait until the broker acknowledged every one; returns the count."""
    producer = AIOKafkaProducer(bootstrap_servers=require_bootstrap(settings), acks="all",
                                max_request_size=settings.max_message_bytes + 65536, linger_ms=5)
    await producer.start()
    sent = 0
    try:
        futures = []
        for key, value in tqdm(payloads, total=total, desc="publishing posts", unit="post", disable=not progress):
            futures.append(await producer.send(settings.posts_topic, key=key, value=value))
            sent += 1
        await producer.flush()
        for future in futures:
            await future
    finally:
        await producer.stop()
    return sent
