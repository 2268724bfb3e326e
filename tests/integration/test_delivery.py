"""BatchSender against the real broker: records land where aiokafka's own keyed sends would put them, a
micro-batch larger than one record batch arrives whole and in order, and a dead letter near the message
size limit is cut to a size the broker takes."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from types import SimpleNamespace

from aiokafka import AIOKafkaProducer

from core.streaming.dead_letters import DEAD_LETTER_PAYLOAD_BYTES, capped, dead_letter
from core.streaming.topics import ensure_topics
from schemas import DeadLetter
from schemas.reasons import ReasonCode
from tests.integration.kafka_helpers import read_topic
from workers.agent.delivery import MAX_BATCH_BYTES, BatchSender


def topics_for(settings, name: str):
    return settings.replace(**{"posts_topic": f"{name}-posts", "sentiment_topic": f"{name}-sentiment",
                                       "dlq_topic": f"{name}-dlq"})


async def test_records_keep_the_partition_a_keyed_send_gives_them(settings):
    local = topics_for(settings, "delivery-partitions")
    await ensure_topics(local)
    keys = [f"post-{i}".encode() for i in range(200)]
    sender = BatchSender(local)
    await sender.start()
    plain = AIOKafkaProducer(bootstrap_servers=local.kafka.bootstrap, acks="all")
    await plain.start()
    try:
        for future in await sender.send(local.kafka.sentiment_topic, [(key, b"batched") for key in keys]):
            await future
        for key in keys:
            await plain.send(local.kafka.posts_topic, b"plain", key=key)
        await plain.flush()
    finally:
        await plain.stop()
        await sender.stop()
    batched = await read_topic(local, local.kafka.sentiment_topic, lambda messages: len(messages) >= len(keys))
    single = await read_topic(local, local.kafka.posts_topic, lambda messages: len(messages) >= len(keys))
    assert len({m.partition for m in batched}) == local.kafka.topic_partitions  # spread, not all on one
    assert {m.key: m.partition for m in batched} == {m.key: m.partition for m in single}


async def test_a_batch_bigger_than_one_record_batch_arrives_whole_and_in_order(settings):
    local = topics_for(settings, "delivery-big")
    await ensure_topics(local)
    records = [(f"key-{i % 3}".encode(), f"{i:06d}".encode() + b"x" * 4000) for i in range(3 * MAX_BATCH_BYTES // 4000)]
    sender = BatchSender(local)
    await sender.start()
    try:
        futures = await sender.send(local.kafka.sentiment_topic, records)
        for future in futures:
            await future
    finally:
        await sender.stop()
    assert len(futures) > 3  # three keys, and each key's records needed more than one record batch
    received = await read_topic(local, local.kafka.sentiment_topic, lambda messages: len(messages) >= len(records),
                                quiet_s=0.5)
    by_key: dict[bytes, list[bytes]] = defaultdict(list)
    for message in received:
        by_key[message.key].append(message.value)
    sent: dict[bytes, list[bytes]] = defaultdict(list)
    for key, value in records:
        sent[key].append(value)
    assert by_key == sent  # each key's records, all of them, once, in the order they were handed over


async def test_a_letter_for_a_huge_message_is_cut_and_the_broker_takes_it(settings):
    local = topics_for(settings, "delivery-dlq")
    await ensure_topics(local)
    payload = b"\xff" * (3 * 1024 * 1024)  # over the broker's default 1 MB message limit, base64 or not
    letter = capped(DeadLetter(code=ReasonCode.UNDECODABLE_IMAGE,
                               reason="undecodable image: cannot identify image file",
                               topic="posts", partition=1, offset=7, payload=payload,
                               failed_at=datetime(2026, 1, 1, tzinfo=UTC)))
    assert letter.payload == payload[:DEAD_LETTER_PAYLOAD_BYTES]
    assert letter.reason.startswith("undecodable image: cannot identify image file (payload cut to its first ")
    assert f"of {len(payload)} bytes" in letter.reason
    sender = BatchSender(local)
    await sender.start()
    try:
        for future in await sender.send(local.kafka.dlq_topic, [(b"posts", letter.model_dump_json().encode())]):
            await future
    finally:
        await sender.stop()
    [message] = await read_topic(local, local.kafka.dlq_topic, lambda messages: len(messages) >= 1)
    assert DeadLetter.model_validate_json(message.value) == letter


def test_a_small_letter_is_left_as_it_is():
    letter = DeadLetter(code=ReasonCode.INVALID_POST, reason="invalid post", topic="posts", payload=b"{broken")
    assert capped(letter) is letter


def test_every_consumer_builds_its_letters_capped():
    """The worker's and the sink's letters both come from `dead_letter`, which caps them."""
    message = SimpleNamespace(topic="sentiment", partition=2, offset=9, key=b"k",
                              value=b"x" * (DEAD_LETTER_PAYLOAD_BYTES + 1))
    letter = dead_letter(SimpleNamespace(message=message), ReasonCode.INVALID_RESULT, "invalid sentiment result: bad")
    assert (letter.topic, letter.partition, letter.offset) == ("sentiment", 2, 9)
    assert letter.payload == message.value[:DEAD_LETTER_PAYLOAD_BYTES] and letter.key == b"k"
    assert letter.reason.startswith("invalid sentiment result: bad (payload cut to its first ")
