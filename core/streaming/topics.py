"""The pipeline's topics (posts, sentiment, dead letters, deletions, shadow results, model control): declared once
for the worker, sink and tests."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from core.logging import get_logger
from core.settings import Settings
from core.streaming.connection import client_options

log = get_logger(__name__)


@dataclass(frozen=True)
class Topics:
    posts: faust.TopicT
    sentiment: faust.TopicT
    dlq: faust.TopicT
    deletions: faust.TopicT
    shadow: faust.TopicT


def create_topics(app: faust.App, settings: Settings) -> Topics:
    """Topics carry raw bytes: agents parse them, so a bad message can reach the DLQ instead of crashing."""

    def topic(name: str) -> faust.TopicT:
        return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                         partitions=settings.kafka.topic_partitions)

    return Topics(posts=topic(settings.kafka.posts_topic), sentiment=topic(settings.kafka.sentiment_topic),
                  dlq=topic(settings.kafka.dlq_topic), deletions=topic(settings.kafka.deletions_topic),
                  shadow=topic(settings.kafka.shadow_topic))


async def ensure_topics(settings: Settings) -> None:
    """Create the pipeline's topics with the configured partition count (existing ones are kept)."""
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        names = [settings.kafka.posts_topic, settings.kafka.sentiment_topic, settings.kafka.dlq_topic,
                 settings.kafka.deletions_topic, settings.kafka.shadow_topic]
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, settings.kafka.topic_partitions, settings.kafka.topic_replication) for n in names
                   if n not in existing]
        if settings.kafka.control_topic not in existing:  # latest record per role is all that matters
            missing.append(NewTopic(settings.kafka.control_topic, 1, settings.kafka.topic_replication,
                                    topic_configs={"cleanup.policy": "compact"}))
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("topics created", topics=[t.name for t in missing], partitions=settings.kafka.topic_partitions)
    finally:
        await admin.close()
