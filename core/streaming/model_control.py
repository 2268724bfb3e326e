"""The model control topic (MODEL_CONTROL_TOPIC): which checkpoint each model role serves.

One partition, compacted, keyed by role (`champion`, `challenger`), each value a JSON `ModelAssignment`: the latest
record per role is the assignment. Workers read it without a consumer group (every worker must see every record,
and none may commit offsets that would hide a record from a restarted one), the CLI writes it. A tombstone or a
record that is not a valid assignment is logged and ignored, so a stray write can never stop the workers.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import ValidationError

from core.logging import get_logger
from core.settings import Settings
from core.streaming.connection import client_options
from core.streaming.topics import ensure_topics
from schemas import ModelAssignment, ModelRole

log = get_logger(__name__)

READ_TIMEOUT_S = 30.0
POLL_MS = 500


def in_share(post_id: str, share: float) -> bool:
    """Whether a challenger scores this post: the first 8 bytes of the id's sha256 as a fraction of 2**64, under
    `share`. A hash, not a random draw, so every replica and every replay picks the same posts, and a challenger's
    results can be compared with the champion's post for post."""
    if share >= 1.0:
        return True
    if share <= 0.0:
        return False
    return int.from_bytes(hashlib.sha256(post_id.encode()).digest()[:8], "big") / 2**64 < share


def parse_record(key: bytes | None, value: bytes | None, offset: int | None = None
                 ) -> tuple[ModelRole, ModelAssignment] | None:
    """A control record as (role, assignment), or None (logged) for a tombstone, an unknown role or a bad value."""
    try:
        role = ModelRole((key or b"").decode())
    except (UnicodeDecodeError, ValueError):
        log.error("model control record with an unknown role ignored", key=repr(key), offset=offset)
        return None
    if value is None:
        log.warning("model control tombstone ignored: the role keeps its model", role=role.value, offset=offset)
        return None
    try:
        return role, ModelAssignment.model_validate_json(value)
    except ValidationError as exc:
        log.error("invalid model control record ignored", role=role.value, offset=offset,
                  error=str(exc).replace("\n", "; ")[:500])
        return None


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    """No group: nothing committed, every reader sees every record."""
    return AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest")


async def _start_at_beginning(settings: Settings) -> tuple[AIOKafkaConsumer, TopicPartition]:
    await ensure_topics(settings)
    consumer = _consumer(settings)
    await consumer.start()
    partition = TopicPartition(settings.kafka.control_topic, 0)
    consumer.assign([partition])
    await consumer.seek_to_beginning(partition)
    return consumer, partition


async def _read_to_end(consumer: AIOKafkaConsumer, partition: TopicPartition, timeout_s: float
                       ) -> dict[ModelRole, ModelAssignment]:
    """Every record up to the end offset as it was on entry: the latest valid one per role."""
    end = (await consumer.end_offsets([partition]))[partition]
    latest: dict[ModelRole, ModelAssignment] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while await consumer.position(partition) < end:
        if loop.time() > deadline:
            raise TimeoutError(f"{partition.topic}: records up to offset {end} not read in {timeout_s:.0f} s")
        for message in (await consumer.getmany(partition, timeout_ms=POLL_MS)).get(partition, []):
            parsed = parse_record(message.key, message.value, message.offset)
            if parsed is not None:
                latest[parsed[0]] = parsed[1]
    return latest


async def read_assignments(settings: Settings, timeout_s: float = READ_TIMEOUT_S) -> dict[ModelRole, ModelAssignment]:
    """The current assignment of each role that has one (the topic is created if missing)."""
    consumer, partition = await _start_at_beginning(settings)
    try:
        return await _read_to_end(consumer, partition, timeout_s)
    finally:
        await consumer.stop()


async def follow_assignments(settings: Settings, timeout_s: float = READ_TIMEOUT_S
                             ) -> AsyncIterator[dict[ModelRole, ModelAssignment]]:
    """First the current assignments (possibly empty), then, for each poll that brought valid records, the latest
    of those per role: a worker that reads a backlog applies only its last record, never the history."""
    consumer, partition = await _start_at_beginning(settings)
    try:
        yield await _read_to_end(consumer, partition, timeout_s)
        while True:
            latest: dict[ModelRole, ModelAssignment] = {}
            for message in (await consumer.getmany(partition, timeout_ms=POLL_MS)).get(partition, []):
                parsed = parse_record(message.key, message.value, message.offset)
                if parsed is not None:
                    latest[parsed[0]] = parsed[1]
            if latest:
                yield latest
    finally:
        await consumer.stop()


async def write_assignments(settings: Settings, assignments: dict[ModelRole, ModelAssignment]) -> None:
    """Publish each role's assignment, in the order given, and wait for the broker's acknowledgements (acks=all)."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for role, assignment in assignments.items():
            await producer.send_and_wait(settings.kafka.control_topic, assignment.model_dump_json().encode(),
                                         key=role.value.encode(), partition=0)
            log.info("model assignment written", role=role.value, checkpoint=assignment.checkpoint,
                     model_id=assignment.model_id, share=assignment.share)
    finally:
        await producer.stop()
