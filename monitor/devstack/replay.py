"""Publish generated posts to the `posts` topic with a plain Kafka producer, as any external producer would
(a load test, the demo's live trickle)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator

from aiokafka import AIOKafkaProducer

from core.progress import progress_bar
from core.settings import Settings
from core.streaming.connection import client_options
from schemas import Post


def as_payloads(posts: Iterable[Post]) -> Iterator[tuple[bytes, bytes]]:
    """Key each post by its id, so redeliveries of one post land on one partition."""
    for post in posts:
        yield post.post_id.encode(), post.model_dump_json().encode()


async def publish(settings: Settings, payloads: Iterable[tuple[bytes, bytes]], total: int | None = None,
                  progress: bool = True, rate: float | None = None) -> int:
    """Send (key, value) pairs, at most `rate` per second if given, and wait until the broker acked every one."""
    producer = AIOKafkaProducer(**client_options(settings), acks="all",
                                max_request_size=settings.worker.max_message_bytes + 65536, linger_ms=5)
    await producer.start()
    sent = 0
    started = time.monotonic()
    try:
        futures = []
        for key, value in progress_bar(payloads, total=total, desc="publishing posts", unit="post",
                                       disable=not progress):
            futures.append(await producer.send(settings.kafka.posts_topic, key=key, value=value))
            sent += 1
            if rate:
                ahead_s = sent / rate - (time.monotonic() - started)
                if ahead_s > 0:
                    await asyncio.sleep(ahead_s)
        await producer.flush()
        for future in futures:
            await future
    finally:
        await producer.stop()
    return sent
