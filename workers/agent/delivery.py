"""A micro-batch's results and dead letters to Kafka as one record batch per partition.

Faust's `Topic.send` costs a `FutureMessage` and an aiokafka future per message, and with linger 0
the producer sends whatever has queued whenever it runs: many small requests. Here each micro-batch
fills one aiokafka `BatchBuilder` per partition and sends each with `send_batch`: one future per
partition, and one request carries the whole batch: less CPU per post in the worker and in the broker
(docs/performance.md).

Records are partitioned by key exactly as aiokafka (and so Faust) would have partitioned them
(`DefaultPartitioner`, murmur2 over all of the topic's partitions), so a post's results keep their
partition whichever sender wrote them.

"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from core.settings import Settings
from core.streaming.connection import client_options

MAX_BATCH_BYTES = 512 * 1024
"""One record batch's size: under the broker's default `message.max.bytes` (1 MB) with room to spare."""

REQUEST_TIMEOUT_MS = 1_200_000
"""Faust's producer default (20 minutes): through a broker outage, results wait to be delivered instead of
failing the batch and restarting the worker."""


class BatchSender:
    """Owns the worker's results producer (acks=all, idempotent unless KAFKA_IDEMPOTENT_PRODUCER=false); start it
    before sending, stop it to flush."""

    def __init__(self, settings: Settings) -> None:
        self.connection = client_options(settings)
        self.idempotent = settings.kafka.idempotent_producer
        self.partitioner = DefaultPartitioner()
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("BatchSender.start() first")
        return self._producer

    async def start(self) -> None:
        """Connect (aiokafka binds a producer to the event loop it is created on: this one)."""
        self._producer = AIOKafkaProducer(**self.connection, acks="all",
                                          client_id="monitor-worker-results", max_batch_size=MAX_BATCH_BYTES,
                                          request_timeout_ms=REQUEST_TIMEOUT_MS, enable_idempotence=self.idempotent)
        await self._producer.start()

    async def stop(self) -> None:
        """Deliver what is queued, then disconnect."""
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def send(self, topic: str, records: Sequence[tuple[bytes | None, bytes]],
                   headers: Sequence[list[tuple[str, bytes]]] | None = None) -> list[asyncio.Future]:
        """Queue (key, value) records, each with its `headers` if given; the returned futures resolve when the broker
        has acknowledged them all (and raise if it refused them). A record without a key goes to any partition."""
        if not records:
            return []
        partitions = sorted(await self.producer.partitions_for(topic))
        builders: dict[int, BatchBuilder] = {}
        sent: list[asyncio.Future] = []
        for index, (key, value) in enumerate(records):
            partition = self.partitioner(key, partitions, partitions)
            record_headers = headers[index] if headers is not None else []
            builder = builders.get(partition) or builders.setdefault(partition, self.producer.create_batch())
            if builder.append(key=key, value=value, timestamp=None, headers=record_headers) is None:  # full
                sent.append(await self.producer.send_batch(builder, topic, partition=partition))
                builder = builders[partition] = self.producer.create_batch()
                builder.append(key=key, value=value, timestamp=None, headers=record_headers)  # empty takes one
        for partition, builder in builders.items():
            sent.append(await self.producer.send_batch(builder, topic, partition=partition))
        return sent
