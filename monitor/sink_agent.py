"""The sink agent: sentiment results in batches -> PostgreSQL (effectively-once) -> Redis cache."""

from __future__ import annotations

import asyncio
from functools import partial

import faust
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError

from monitor.cache import cache_buckets
from monitor.db import create_engine, create_schema
from monitor.logging import get_logger
from monitor.settings import Settings
from monitor.sink import write_results
from monitor.streaming import Topics, create_app, create_topics
from schemas import DeadLetter, SentimentResult, TrendBucket

log = get_logger(__name__)

MAX_BACKOFF_S = 10.0


async def write_with_retry(write, what: str):
    """Retry transient database errors with capped exponential backoff: the batch is never skipped."""
    delay = 0.2
    while True:
        try:
            return await write()
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("write failed, retrying", target=what, error=str(exc).splitlines()[0], retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)


def register_sink_agent(app: faust.App, topics: Topics, settings: Settings):
    engine = create_engine(settings.database_url or "")
    redis = Redis.from_url(settings.redis_url or "", socket_timeout=2)

    @app.agent(topics.sentiment, name="sink")
    async def sink(stream: faust.StreamT) -> None:
        await write_with_retry(partial(create_schema, engine), "schema")
        async for events in stream.take_events(settings.sink_max_batch, within=settings.sink_max_wait_s):
            results, dead = [], []
            for event in events:
                try:
                    results.append(SentimentResult.model_validate_json(event.message.value or b""))
                except ValidationError as exc:
                    m = event.message
                    dead.append(DeadLetter(reason=f"invalid sentiment result: {exc.errors()[0]['msg']}",
                                           topic=m.topic, partition=m.partition, offset=m.offset,
                                           payload=m.value or b""))
            for letter in dead:
                await topics.dlq.send(key=letter.topic.encode(), value=letter.model_dump_json().encode())
            buckets = await write_with_retry(partial(write_results, engine, results), "postgres")
            await refresh_cache(redis, buckets, settings)

    return sink


async def refresh_cache(redis: Redis, buckets: list[TrendBucket], settings: Settings) -> None:
    """Best effort: PostgreSQL already holds the truth, so a Redis outage must not stall the sink."""
    try:
        await cache_buckets(redis, buckets, settings.redis_series_ttl_s)
    except (RedisError, OSError) as exc:
        log.warning("redis cache update skipped", error=str(exc), buckets=len(buckets))


def build_sink_app(settings: Settings) -> faust.App:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (or use `monitor demo` for the embedded stack)")
    app = create_app("sentiment-sink", settings)
    register_sink_agent(app, create_topics(app, settings), settings)
    return app
