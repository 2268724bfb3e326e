"""Run one source into Kafka: filter, produce with acks from every in-sync replica, persist what was acknowledged.

Delivery is at least once. A record's offset is written to the cursor file only after the broker acknowledged it
and every record before it, so a connector killed at any instant resumes at or before the first record the broker
does not have. What it sends twice carries the same post id, which the sink counts once. Memory is bounded by
`INGEST_MAX_IN_FLIGHT`: beyond it the connector waits for acknowledgements before reading more from the source,
and a source that cannot keep its connection while waiting reconnects from its offset.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer

from connectors import metrics
from connectors.cursor import CursorStore
from connectors.filters import PostFilter
from connectors.source import Offset, Source, SourceRecord
from core.logging import get_logger
from core.settings import Settings
from core.streaming.connection import client_options
from core.streaming.dead_letters import capped, dead_letter_headers
from schemas import DeadLetter, Post, PostDeletion
from schemas.reasons import ReasonCode

log = get_logger(__name__)


@dataclass
class IngestSummary:
    """What one run did (also in the metrics): counts of events by outcome."""

    received: int = 0
    posts: int = 0
    deletions: int = 0
    filtered: int = 0
    malformed: int = 0
    offset: Offset | None = field(default=None)


class _Acknowledgements:
    """Sends in flight, in order, each with the offset it unlocks; the cursor advances over the acknowledged head.

    Records with nothing to send (filtered, other collections) only move the offset: consecutive ones share one
    entry, so a filtered firehose does not grow the queue."""

    def __init__(self) -> None:
        self._pending: deque[tuple[asyncio.Future | None, Offset | None]] = deque()
        self.in_flight = 0
        self.acknowledged: Offset | None = None

    def add(self, future: asyncio.Future | None, offset: Offset | None) -> None:
        if future is None and self._pending and self._pending[-1][0] is None:
            if offset is not None:
                self._pending[-1] = (None, offset)
            return
        if future is not None:
            self.in_flight += 1
        self._pending.append((future, offset))

    def advance(self) -> None:
        """Pop every acknowledged record at the head; a failed send raises (its offset is never saved)."""
        while self._pending:
            future, offset = self._pending[0]
            if future is not None:
                if not future.done():
                    return
                future.result()
                self.in_flight -= 1
            self._pending.popleft()
            if offset is not None:
                self.acknowledged = offset

    async def wait_oldest(self) -> None:
        future = next((f for f, _ in self._pending if f is not None), None)
        if future is not None:
            await asyncio.shield(future)
        self.advance()

    async def drain(self) -> None:
        while self._pending:
            await self.wait_oldest()


class IngestRunner:
    """Publishes one source's records: posts to the posts topic, deletions to the deletions topic, unreadable events
    to the dead-letter topic; each keyed by post id (dead letters by connector name)."""

    def __init__(self, settings: Settings, source: Source, cursor: CursorStore, *,
                 post_filter: PostFilter | None = None, brands: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.source = source
        self.cursor = cursor
        self.post_filter = post_filter or PostFilter()
        self.brands = brands
        self.summary = IngestSummary()
        self._acks = _Acknowledgements()
        self._saved: Offset | None = None
        self._labels = {"connector": source.name}
        self._pump_task: asyncio.Task | None = None
        self._stopping = False
        self._failure: Exception | None = None

    def _producer(self) -> AIOKafkaProducer:
        kafka = self.settings.kafka
        return AIOKafkaProducer(**client_options(self.settings), acks="all",
                                enable_idempotence=kafka.idempotent_producer, linger_ms=20,
                                max_request_size=self.settings.worker.max_message_bytes + 65536)

    async def run(self) -> IngestSummary:
        """Read until the source ends (files) or `stop()` is called (streams); then wait for the acknowledgements of
        what was sent and save the cursor. Cancelled instead, it saves what was acknowledged so far."""
        start = self.cursor.load()
        self.summary.offset = start
        log.info("connector starting", connector=self.source.name, resume_from=start)
        producer = self._producer()
        await producer.start()
        flusher = asyncio.create_task(self._flush_periodically())
        try:
            self._pump_task = asyncio.create_task(self._pump(producer, start))
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump_task
            if self._failure is not None:
                raise self._failure
            if self._pump_task.cancelled() and not self._stopping:
                raise asyncio.CancelledError
            await producer.flush()
            await self._acks.drain()
        finally:
            flusher.cancel()
            with contextlib.suppress(Exception):
                self._acks.advance()
            self._save()
            await producer.stop()
        log.info("connector stopped", connector=self.source.name, posts=self.summary.posts,
                 deletions=self.summary.deletions, filtered=self.summary.filtered, malformed=self.summary.malformed)
        return self.summary

    def stop(self) -> None:
        """Stop reading the source; `run()` then finishes what is in flight and returns (SIGTERM, Ctrl-C)."""
        self._stopping = True
        if self._pump_task is not None:
            self._pump_task.cancel()

    async def _pump(self, producer: AIOKafkaProducer, start: Offset | None) -> None:
        max_in_flight = self.settings.ingest.max_in_flight
        async for record in self.source.records(start):
            self.summary.received += 1
            metrics.RECEIVED.labels(**self._labels).inc()
            future = await self._send(producer, record)
            self._acks.add(future, record.offset)
            while self._acks.in_flight >= max_in_flight:
                await self._acks.wait_oldest()
            metrics.IN_FLIGHT.labels(**self._labels).set(self._acks.in_flight)

    async def _flush_periodically(self) -> None:
        """Save the acknowledged offset every INGEST_CURSOR_FLUSH_S, also while the source is quiet; a send the
        broker refused stops the run (its offset is never saved, so a restart sends it again)."""
        while True:
            await asyncio.sleep(self.settings.ingest.cursor_flush_s)
            try:
                self._acks.advance()
            except Exception as exc:  # noqa: BLE001 - whatever the producer raised ends the run, re-raised there
                self._failure = exc
                if self._pump_task is not None:
                    self._pump_task.cancel()
                return
            self._save()
            metrics.IN_FLIGHT.labels(**self._labels).set(self._acks.in_flight)

    async def _send(self, producer: AIOKafkaProducer, record: SourceRecord) -> asyncio.Future | None:
        kafka = self.settings.kafka
        if record.malformed is not None:
            self.summary.malformed += 1
            metrics.MALFORMED.labels(**self._labels).inc()
            log.warning("malformed source event", connector=self.source.name, reason=record.malformed)
            letter = capped(DeadLetter(code=ReasonCode.MALFORMED_SOURCE_EVENT, reason=record.malformed,
                                       topic=f"source:{self.source.name}", payload=record.raw,
                                       key=self.source.name.encode()))
            return await producer.send(kafka.dlq_topic, key=letter.key, value=letter.model_dump_json().encode(),
                                       headers=dead_letter_headers(letter))
        value = record.value
        if isinstance(value, Post):
            post = self.post_filter.apply(value, record.hashtags, self.brands)
            if post is None:
                self.summary.filtered += 1
                metrics.FILTERED.labels(**self._labels).inc()
                return None
            self.summary.posts += 1
            return self._counted(await producer.send(kafka.posts_topic, key=post.post_id.encode(),
                                                     value=post.model_dump_json().encode()), "post", record)
        if isinstance(value, PostDeletion):
            self.summary.deletions += 1
            return self._counted(await producer.send(kafka.deletions_topic, key=value.post_id.encode(),
                                                     value=value.model_dump_json().encode()), "deletion", record)
        return None

    def _counted(self, future: asyncio.Future, kind: str, record: SourceRecord) -> asyncio.Future:
        counter = metrics.PRODUCED.labels(kind=kind, **self._labels)
        source_time = record.source_time

        def acknowledged(done: asyncio.Future) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            counter.inc()
            if source_time is not None:
                metrics.BEHIND.labels(**self._labels).set(max(0.0, (datetime.now(UTC) - source_time).total_seconds()))

        future.add_done_callback(acknowledged)
        return future

    def _save(self) -> None:
        offset = self._acks.acknowledged
        if offset is not None and offset != self._saved:
            self.cursor.save(offset)
            self._saved = offset
            self.summary.offset = offset
