"""The sink agent: sentiment results in batches -> PostgreSQL (effectively-once) -> Redis cache."""

from __future__ import annotations

import asyncio
from functools import partial

import faust
from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError

from monitor.brands import BrandRuleCache
from monitor.cache import cache_buckets, mark_cold
from monitor.db import create_engine
from monitor.logging import get_logger
from monitor.migrate import upgrade_head
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


class CacheWriter:
    """Best-effort write-through: PostgreSQL holds the truth, so a Redis outage must not stall the sink.

    Series whose update was lost are marked cold once Redis answers again, so readers re-sync
    them from PostgreSQL instead of serving a stale series.
    """

    def __init__(self, redis: Redis, ttl_s: int) -> None:
        self.redis, self.ttl_s = redis, ttl_s
        self.missed: set[tuple[str, str]] = set()

    async def write(self, buckets: list[TrendBucket]) -> None:
        try:
            if self.missed:
                await mark_cold(self.redis, self.missed)
                self.missed.clear()
            await cache_buckets(self.redis, buckets, self.ttl_s)
        except (RedisError, OSError) as exc:
            self.missed |= {(b.brand, b.granularity) for b in buckets}
            log.warning("redis cache update skipped", error=str(exc), buckets=len(buckets))


def register_sink_agent(app: faust.App, topics: Topics, settings: Settings):
    engine = create_engine(settings.database_url or "")
    cache = CacheWriter(Redis.from_url(settings.redis_url or "", socket_timeout=2), settings.redis_series_ttl_s)
    rules = BrandRuleCache()

    async def migrate() -> None:
        await asyncio.to_thread(upgrade_head, settings.database_url or "")

    @app.agent(topics.sentiment, name="sink")
    async def sink(stream: faust.StreamT) -> None:
        await write_with_retry(migrate, "schema")
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
            buckets = await write_with_retry(partial(write_results, engine, results, rules), "postgres")
            await cache.write(buckets)

    return sink


def build_sink_app(settings: Settings) -> faust.App:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (or use `monitor demo` for the embedded stack)")
    app = create_app("sentiment-sink", settings)
    register_sink_agent(app, create_topics(app, settings), settings)
    return app
