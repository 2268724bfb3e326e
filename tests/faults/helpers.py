"""What every fault scenario needs: the processes, a producer, waits, and the exact-count check."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.process import ChildProcess
from core.settings import Settings
from monitor.store.db import GRANULARITIES, post_sentiment, trend_bucket
from schemas import Post, SentimentResult
from tests.faults.report import FaultReport
from tests.integration.kafka_helpers import read_topic
from tests.integration.trend_helpers import bucket_start

MARKER_BRAND = "fault-marker"


class Pipeline:
    """`monitor worker` and `monitor sink` as OS processes, each killable and restartable on its own."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.children = {role: ChildProcess.monitor(role, env, log_dir / f"{role}.log") for role in ("worker", "sink")}
        self.expected: set[str] = set()
        """Roles that should be running: any of them exiting is a failure, however it exits."""

    @property
    def worker(self) -> ChildProcess:
        return self.children["worker"]

    @property
    def sink(self) -> ChildProcess:
        return self.children["sink"]

    def start(self, *roles: str) -> Pipeline:
        for role in roles or tuple(self.children):
            self.children[role].start()
            self.expected.add(role)
        return self

    def kill(self, role: str) -> None:
        self.expected.discard(role)
        self.children[role].kill()

    def check_alive(self) -> None:
        for role in self.expected:
            self.children[role].check_alive()

    def stop(self, *roles: str) -> None:
        for role in roles or tuple(self.children):
            self.expected.discard(role)
            self.children[role].stop()

    def log_text(self, role: str) -> str:
        path = self.children[role].log_path
        return path.read_text(errors="replace") if path.exists() else ""


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout_s: float = 120.0,
                     pipeline: Pipeline | None = None, what: str = "condition") -> None:
    """Poll `predicate`; fail fast if a pipeline process died (a crash loop is a failure, not a wait)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await predicate():
        if pipeline is not None:
            pipeline.check_alive()
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def produce(settings: Settings, messages: Iterable[tuple[bytes | None, bytes]], topic: str | None = None,
                  rate_per_s: float | None = None, partition: int | None = None,
                  on_sent: Callable[[int], None] | None = None) -> int:
    """Send (key, value) pairs, optionally paced (`on_sent(n)` after each); returns how many were sent."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    sent = 0
    try:
        for key, value in messages:
            await producer.send(topic or settings.kafka.posts_topic, value, key=key, partition=partition)
            sent += 1
            if on_sent:
                on_sent(sent)
            if rate_per_s:
                await asyncio.sleep(1 / rate_per_s)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


def post_messages(posts: Iterable[Post]) -> list[tuple[bytes, bytes]]:
    return [(p.post_id.encode(), p.model_dump_json().encode()) for p in posts]


async def stored_ids(engine: AsyncEngine) -> set[str]:
    """Post ids in post_sentiment; empty while PostgreSQL is down or the table is not there yet."""
    try:
        async with engine.connect() as conn:
            return {row[0] for row in await conn.execute(select(post_sentiment.c.post_id))}
    except Exception:  # noqa: BLE001 - "not readable right now" is an answer for a poll
        return set()


async def wait_stored(engine: AsyncEngine, ids: set[str], pipeline: Pipeline | None, timeout_s: float = 180.0) -> None:
    async def all_stored() -> bool:
        return ids <= await stored_ids(engine)

    await wait_until(all_stored, timeout_s, pipeline, what=f"{len(ids)} posts stored")


async def drain(settings: Settings, engine: AsyncEngine, pipeline: Pipeline) -> None:
    """Make sure the sink has consumed everything on `sentiment`: stop the worker (no new results),
    then put a marker result on every partition; the sink reads partitions in order, so once every
    marker is stored, every result before it has been through the sink too."""
    pipeline.stop("worker")
    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    markers = [f"marker-{stamp}-{p}" for p in range(settings.kafka.topic_partitions)]
    for partition, post_id in enumerate(markers):
        marker = SentimentResult(post_id=post_id, created_at=datetime.now(UTC), label="neutral",
                                 probabilities={"neutral": 1.0}, brands=[MARKER_BRAND], model_version="fault-test",
                                 latency_ms=0)
        await produce(settings, [(None, marker.model_dump_json().encode())], settings.kafka.sentiment_topic,
                      partition=partition)
    await wait_stored(engine, set(markers), pipeline)


def expected_volumes(posts: Sequence[Post]) -> Counter:
    """(brand, granularity, bucket_start) -> unique posts, computed without the database."""
    unique = {p.post_id: p for p in posts}.values()
    return Counter((brand, g, bucket_start(p.created_at, g)) for p in unique for brand in set(p.brands)
                   for g in GRANULARITIES)


async def stored_volumes(engine: AsyncEngine) -> Counter:
    """Every language's rows of a bucket together: each post is counted in one of them, supported or not."""
    tb = trend_bucket.c
    async with engine.connect() as conn:
        rows = await conn.execute(select(tb.brand, tb.granularity, tb.bucket_start, func.sum(tb.volume))
                                  .where(tb.brand != MARKER_BRAND).group_by(tb.brand, tb.granularity, tb.bucket_start))
        return Counter({(brand, g, start): int(volume) for brand, g, start, volume in rows})


async def assert_counted_once(engine: AsyncEngine, posts: Sequence[Post], report: FaultReport, scenario: str,
                              **details) -> None:
    """Rows and bucket volumes equal an independent count of the unique posts; figures go to the report."""
    sent = {p.post_id for p in posts}
    stored = {i for i in await stored_ids(engine) if not i.startswith("marker-")}
    expected, actual = expected_volumes(posts), await stored_volumes(engine)
    per_minute = [k for k in expected.keys() | actual.keys() if k[1] == "minute"]
    shortfall = sum(max(0, expected[k] - actual[k]) for k in per_minute)
    excess = max(sum(max(0, actual[k] - expected[k]) for k in expected.keys() | actual.keys() if k[1] == g)
                 for g in GRANULARITIES)
    lost = max(len(sent - stored), shortfall)
    report.record(scenario, sent=len(sent), lost=lost, double_counted=excess + len(stored - sent), **details)
    assert stored == sent, f"lost {sorted(sent - stored)[:5]}, unexpected {sorted(stored - sent)[:5]}"
    assert actual == expected, f"bucket volumes differ: lost {shortfall}, double-counted {excess}"


async def read_all(settings: Settings, topic: str, complete: Callable[[list], bool], quiet_s: float = 1.5,
                   timeout_s: float = 60.0) -> list:
    """Every message on a topic that no one writes to any more: until `complete(messages)` holds and then
    `quiet_s` passes with nothing new."""
    return await read_topic(settings, topic, complete, timeout_s=timeout_s, quiet_s=quiet_s)


WARM_UP = 10


async def start_warm(settings: Settings, engine, pipeline, posts, warm_up: int = WARM_UP) -> None:
    """Start worker and sink and wait until the first posts went all the way through (groups formed)."""
    pipeline.start()
    await produce(settings, post_messages(posts[:warm_up]))
    await wait_stored(engine, {p.post_id for p in posts[:warm_up]}, pipeline)


async def times_scored(settings: Settings, ids: set[str]) -> Counter:
    """How many results each post has on `sentiment` (more than one: redelivered and scored again)."""
    def post_ids(messages) -> set[str]:
        return {SentimentResult.model_validate_json(m.value).post_id for m in messages}

    messages = await read_all(settings, settings.kafka.sentiment_topic, lambda messages: ids <= post_ids(messages))
    return Counter(SentimentResult.model_validate_json(m.value).post_id for m in messages)



class ProgressProbe:
    """Watches the worker from outside: results it has produced (tailing `sentiment`) against the offsets its
    group has committed on `posts`. Results beyond the committed offsets are work a crash would redo."""

    def __init__(self, settings: Settings, group: str = "sentiment-worker") -> None:
        self.settings, self.group = settings, group
        self.results: set[str] = set()
        self._tail = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False)
        self._offsets = AIOKafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, group_id=group,
                                         enable_auto_commit=False)
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> ProgressProbe:
        await self._tail.start()
        await self._offsets.start()
        kafka = self.settings.kafka
        partitions = [TopicPartition(kafka.sentiment_topic, p) for p in range(kafka.topic_partitions)]
        self._tail.assign(partitions)
        await self._tail.seek_to_beginning(*partitions)
        self._task = asyncio.create_task(self._follow())
        return self

    async def _follow(self) -> None:
        while True:
            for batch in (await self._tail.getmany(timeout_ms=100)).values():
                self.results |= {SentimentResult.model_validate_json(m.value).post_id for m in batch}

    async def committed(self) -> int:
        """Sum over the `posts` partitions of the group's committed offsets (read without joining the group)."""
        offsets = [await self._offsets.committed(TopicPartition(self.settings.kafka.posts_topic, p))
                   for p in range(self.settings.kafka.topic_partitions)]
        return sum(o or 0 for o in offsets)

    async def uncommitted(self) -> int:
        return len(self.results) - await self.committed()

    async def caught_up(self, timeout_s: float = 30.0) -> None:
        """Wait until the tail has read every result on `sentiment` so far (call it once the worker is dead,
        so the count of results ahead of the commits is exact, not a lagging lower bound)."""
        partitions = list(self._tail.assignment())
        ends = await self._tail.end_offsets(partitions)

        async def read_to_end() -> bool:
            positions = {tp: await self._tail.position(tp) for tp in ends}
            return all(positions[tp] >= end for tp, end in ends.items())

        await wait_until(read_to_end, timeout_s=timeout_s, what="the results tail to reach the topic's end")
        await asyncio.sleep(0.3)  # the follower task folds its last batch into `results`

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
        await self._tail.stop()
        await self._offsets.stop()
