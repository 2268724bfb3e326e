"""Faust apps and topics: one factory so the worker, the sink and the tests agree on both."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import faust
import mode
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor import kafka_consumer
from monitor.logging import get_logger
from monitor.settings import Settings
from schemas import DeadLetter

log = get_logger(__name__)


@dataclass(frozen=True)
class Topics:
    posts: faust.TopicT
    sentiment: faust.TopicT
    dlq: faust.TopicT


DEAD_LETTER_PAYLOAD_BYTES = 256 * 1024
"""A dead letter's payload is cut here (base64 in JSON: about 350 KiB a letter, well under the broker's 1 MB)."""


def dead_letter(event: faust.EventT, reason: str) -> DeadLetter:
    """The letter for a message that cannot be used: where it is, why, and its payload (`capped`)."""
    message = event.message
    return capped(DeadLetter(reason=reason, topic=message.topic, partition=message.partition, offset=message.offset,
                             payload=message.value or b""))


def capped(letter: DeadLetter) -> DeadLetter:
    """The letter, with its payload cut to `DEAD_LETTER_PAYLOAD_BYTES` and the cut in its reason.

    The original stays at its topic, partition and offset, which the letter names. Uncut, a message near the
    size limit would make a letter larger than the broker takes (1 MB by default): the send would fail, the
    consumer would crash and the message would come back on every restart, a poison pill.
    """
    size = len(letter.payload)
    if size <= DEAD_LETTER_PAYLOAD_BYTES:
        return letter
    return letter.model_copy(update={
        "payload": letter.payload[:DEAD_LETTER_PAYLOAD_BYTES],
        "reason": f"{letter.reason} (payload cut to its first {DEAD_LETTER_PAYLOAD_BYTES} of {size} bytes; "
                  f"the whole message is at the topic, partition and offset given)",
    })


def require_bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise RuntimeError(
            "KAFKA_BOOTSTRAP is not set: point it at a broker, or run `monitor demo` for the embedded stack"
        )
    return settings.kafka_bootstrap


def create_app(app_id: str, settings: Settings) -> faust.App:
    """A Faust app whose id is its consumer group; offsets are committed only for acked events. Its consumer
    hands each message over without Faust's per-message tasks and waits `CONSUMER_FETCH_WAIT_S` per fetch for
    `CONSUMER_FETCH_MIN_BYTES` (`monitor.kafka_consumer`)."""
    brokers = ";".join(f"kafka://{host}" for host in require_bootstrap(settings).split(","))
    datadir = settings.data_dir / "faust" / app_id  # Faust's default is a `<app id>-data` folder in the cwd
    datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    return kafka_consumer.App(
        app_id,
        fetch_wait_s=settings.consumer_fetch_wait_s,
        fetch_min_bytes=settings.consumer_fetch_min_bytes,
        broker=brokers,
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.consumer_session_timeout_s,
        broker_heartbeat_interval=settings.consumer_heartbeat_s,
        broker_rebalance_timeout=settings.consumer_rebalance_timeout_s,
        broker_commit_interval=1.0,
        web_enabled=False,
        producer_acks=-1,
        # An agent that raises (a bug, a broker refusing results) exits the process instead of leaving it
        # alive with a dead agent: the process manager restarts it and the uncommitted events are redelivered.
        agent_supervisor=mode.CrashingSupervisor,
    )


def create_topics(app: faust.App, settings: Settings) -> Topics:
    """Topics carry raw bytes: agents parse them, so a bad message can reach the DLQ instead of crashing."""

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                         partitions=settings.topic_partitions)

    return Topics(posts=topic(settings.posts_topic), sentiment=topic(settings.sentiment_topic),
                  dlq=topic(settings.dlq_topic))


async def ensure_topics(settings: Settings) -> None:
    """Create the pipeline's topics with the configured partition count (existing ones are kept)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=require_bootstrap(settings))
    await admin.start()
    try:
        names = [settings.posts_topic, settings.sentiment_topic, settings.dlq_topic]
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, settings.topic_partitions, 1) for n in names if n not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("topics created", topics=[t.name for t in missing], partitions=settings.topic_partitions)
    finally:
        await admin.close()


def run_app(app: faust.App, settings: Settings) -> None:
    """Run a Faust worker in this process until SIGTERM/SIGINT (graceful: in-flight batch finishes)."""
    asyncio.run(ensure_topics(settings))
    worker = faust.Worker(app, loglevel=settings.log_level, override_logging=False)
    worker.execute_from_commandline()
