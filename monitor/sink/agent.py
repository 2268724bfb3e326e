"""The sink's agents: sentiment results, and post deletions, in batches -> PostgreSQL (effectively-once) -> Redis
cache; a challenger's shadow results -> PostgreSQL; and retention."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TypeVar

import faust
from pydantic import BaseModel, ValidationError
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from core import metrics
from core.logging import error_summary, get_logger
from core.settings import Settings
from core.streaming.app import create_app
from core.streaming.dead_letters import dead_letter, dead_letter_headers
from core.streaming.topics import Topics, create_topics
from monitor.sink.writer import write_results
from monitor.store.brands import BrandRuleCache
from monitor.store.cache import cache_buckets
from monitor.store.db import create_engine
from monitor.store.deletions import AppliedDeletions, write_deletions
from monitor.store.keyphrases import count_keyphrases
from monitor.store.migrate import upgrade_head
from monitor.store.partitions import run_partition_loop
from monitor.store.retention import Retention, run_prune_loop
from monitor.store.shadow import write_shadow_results
from monitor.store.trends import buckets_updated_since
from schemas import DeadLetter, PostDeletion, SentimentResult, TrendBucket
from schemas.reasons import ReasonCode

log = get_logger(__name__)

MAX_BACKOFF_S = 10.0
RESYNC_ON_START_S = 900
"""At start-up, re-write buckets PostgreSQL changed this recently: a crashed predecessor may have
committed a batch and died before writing it to Redis."""
RESYNC_MARGIN_S = 60


async def write_with_retry(write, what: str):
    """Retry transient database errors with capped exponential backoff: the batch is never skipped."""
    delay = 0.2
    while True:
        try:
            return await write()
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("write failed, retrying", target=what, error=error_summary(exc), retry_in_s=delay)
            metrics.SINK_RETRIES.labels(what).inc()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF_S)


class CacheWriter:
    """Best-effort write-through: PostgreSQL holds the truth, so a Redis outage must not stall the sink.

    A write that may have been lost (Redis down, or this process starting after a crash between
    a commit and its cache write) is repaired by re-reading from PostgreSQL every bucket updated
    since then and writing those totals too; the cache keeps the newer snapshot, which makes that harmless.
    """

    def __init__(self, engine: AsyncEngine, redis: Redis, ttl_s: int) -> None:
        self.engine, self.redis, self.ttl_s = engine, redis, ttl_s
        self.stale_since: datetime | None = datetime.now(UTC) - timedelta(seconds=RESYNC_ON_START_S)

    async def write(self, buckets: list[TrendBucket]) -> None:
        try:
            if self.stale_since is not None:
                await self._resync(self.stale_since)
                self.stale_since = None
            await cache_buckets(self.redis, buckets, self.ttl_s)
        except (RedisError, OSError, SQLAlchemyError) as exc:  # the re-sync reads PostgreSQL, which may be gone again
            self.stale_since = self.stale_since or datetime.now(UTC) - timedelta(seconds=RESYNC_MARGIN_S)
            metrics.SINK_CACHE_FAILURES.inc()
            log.warning("redis cache update skipped", error=str(exc), buckets=len(buckets))

    async def _resync(self, since: datetime) -> None:
        changed = await buckets_updated_since(self.engine, since)
        written = await cache_buckets(self.redis, changed, self.ttl_s, announce=False)
        log.info("redis re-synced from postgres", since=since.isoformat(), buckets=written)


async def send_dead_letters(topics: Topics, letters: list[DeadLetter]) -> None:
    """Before the batch's write: a letter lost to a crash is re-sent from the redelivered message."""
    for letter in letters:
        await topics.dlq.send(key=letter.key, value=letter.model_dump_json().encode(),
                              headers=dead_letter_headers(letter))


def count_deletions(applied: AppliedDeletions, consumed: int) -> None:
    """`deleted` + `recorded` + `repeated` = deletions consumed (redeliveries included)."""
    recorded_only = max(applied.recorded - applied.deleted, 0)
    metrics.SINK_DELETIONS.labels("deleted").inc(applied.deleted)
    metrics.SINK_DELETIONS.labels("recorded").inc(recorded_only)
    metrics.SINK_DELETIONS.labels("repeated").inc(max(consumed - applied.deleted - recorded_only, 0))


def register_sink_agent(app: faust.App, topics: Topics, settings: Settings):
    engine = create_engine(settings.store.database_url or "")
    cache = CacheWriter(engine, Redis.from_url(settings.store.redis_url or "", socket_timeout=2),
                        settings.store.redis_series_ttl_s)
    rules = BrandRuleCache()

    async def migrate() -> None:
        await asyncio.to_thread(upgrade_head, settings.store.database_url or "")

    @app.agent(topics.sentiment, name="sink")
    async def sink(stream: faust.StreamT) -> None:
        await write_with_retry(migrate, "schema")
        async for events in stream.take_events(settings.sink.max_batch, within=settings.sink.max_wait_s):
            metrics.observe_queue_wait(metrics.SINK_QUEUE_WAIT, events, time.time())
            results, dead = parse_events(events, SentimentResult, ReasonCode.INVALID_RESULT, "sentiment result")
            await send_dead_letters(topics, dead)
            with metrics.SINK_BATCH_SECONDS.time():
                buckets = await write_with_retry(partial(write_results, engine, results, rules), "postgres")
            metrics.SINK_RESULTS.inc(len(results))
            metrics.SINK_DEAD_LETTERS.inc(len(dead))
            await cache.write(buckets)

    @app.agent(topics.deletions, name="sink-deletions")
    async def deletions(stream: faust.StreamT) -> None:
        """Posts their sources deleted: marked, their text dropped, their counts taken out of the buckets."""
        await write_with_retry(migrate, "schema")
        async for events in stream.take_events(settings.sink.max_batch, within=settings.sink.max_wait_s):
            reported, dead = parse_events(events, PostDeletion, ReasonCode.INVALID_DELETION, "post deletion")
            await send_dead_letters(topics, dead)
            applied = await write_with_retry(partial(write_deletions, engine, reported), "postgres")
            count_deletions(applied, len(reported))
            metrics.SINK_DEAD_LETTERS.inc(len(dead))
            await cache.write(applied.buckets)

    @app.agent(topics.shadow, name="sink-shadow")
    async def shadow(stream: faust.StreamT) -> None:
        """A challenger's results (shadow scoring): stored apart, never counted in the trends."""
        await write_with_retry(migrate, "schema")
        async for events in stream.take_events(settings.sink.max_batch, within=settings.sink.max_wait_s):
            results, dead = parse_events(events, SentimentResult, ReasonCode.INVALID_RESULT, "shadow result")
            await send_dead_letters(topics, dead)
            await write_with_retry(partial(write_shadow_results, engine, results), "postgres")
            metrics.SINK_SHADOW_RESULTS.inc(len(results))
            metrics.SINK_DEAD_LETTERS.inc(len(dead))

    @app.task
    async def keyphrases() -> None:
        """Keyphrase tables, beside the write path: every sink runs the loop, one at a time counts."""
        await run_keyphrase_loop(engine, settings.sink.keyphrase_interval_s)

    @app.task
    async def keep_partitions() -> None:
        """The coming weeks' partitions of the per-post tables, made ahead by every sink (one at a time)."""
        await write_with_retry(migrate, "schema")
        await run_partition_loop(engine, settings.retention.interval_s)

    @app.task
    async def prune_expired() -> None:
        """Retention: every sink runs the loop, one at a time prunes (see monitor/retention.py)."""
        await run_prune_loop(engine, Retention.from_settings(settings), settings.retention.interval_s)

    return sink


async def run_keyphrase_loop(engine: AsyncEngine, interval_s: float) -> None:
    """A keyphrase pass every `interval_s` until cancelled; a failed pass (database down) is retried next time."""
    if not interval_s:
        log.info("keyphrase tables off (SINK_KEYPHRASE_INTERVAL_S=0)")
        return
    while True:
        await asyncio.sleep(interval_s)
        try:
            done = await count_keyphrases(engine)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a database outage
            log.warning("keyphrase pass failed, retrying next interval", error=error_summary(exc))
            continue
        if done is not None and (done.counted or done.removed):
            metrics.KEYPHRASE_POSTS.labels("counted").inc(done.counted)
            metrics.KEYPHRASE_POSTS.labels("removed").inc(done.removed)
            log.info("keyphrase pass", counted=done.counted, removed=done.removed)


Message = TypeVar("Message", bound=BaseModel)


def parse_events(events: Sequence[faust.EventT], model: type[Message], code: ReasonCode, what: str
                 ) -> tuple[list[Message], list[DeadLetter]]:
    """Each event's value as `model`, or a dead letter with `code` and the first validation error."""
    parsed, dead = [], []
    for event in events:
        try:
            parsed.append(model.model_validate_json(event.message.value or b""))
        except ValidationError as exc:
            dead.append(dead_letter(event, code, f"invalid {what}: {exc.errors()[0]['msg']}"))
    return parsed, dead


def build_sink_app(settings: Settings) -> faust.App:
    if not settings.store.database_url or not settings.store.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (or use `monitor demo` for the embedded stack)")
    app = create_app(settings.sink.group, settings)
    register_sink_agent(app, create_topics(app, settings), settings)
    return app
