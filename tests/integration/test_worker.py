"""The worker as ops run it: `monitor worker --concurrency 2` against the real broker, metrics on HTTP,
SIGTERM in the middle of a stream, then a restart: every post is scored at least once, none is lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from monitor.devstack.samples import sample_posts
from schemas import DeadLetter, Post, SentimentResult
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

POSTS = 400


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_workers(env: dict[str, str], log_path, concurrency: int) -> subprocess.Popen:
    with log_path.open("ab") as log_file:
        return subprocess.Popen([sys.executable, "-m", "monitor", "worker", "--concurrency", str(concurrency)],
                                env={**os.environ, **env}, stdout=log_file, stderr=subprocess.STDOUT)


async def scrape(port: int) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text


def sample_value(text: str, name: str) -> float:
    """Sum of a metric's samples (all label sets) in Prometheus text format."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def test_sigterm_mid_stream_loses_nothing_and_metrics_are_served(stack, settings, tmp_path):
    topics = {"POSTS_TOPIC": "posts-shutdown", "SENTIMENT_TOPIC": "sentiment-shutdown", "DLQ_TOPIC": "dlq-shutdown"}
    port = free_port()
    while port + 1 == free_port():  # the supervisor uses port and port + 1
        port = free_port()
    env = {**stack.env(), **topics, "TOPIC_PARTITIONS": str(settings.kafka.topic_partitions), "WORKER_MAX_BATCH": "8",
           "METRICS_PORT": str(port), "WORKER_GROUP": "worker-shutdown-test"}
    local = settings.replace(**{name.lower(): value for name, value in topics.items()})
    posts = list(sample_posts(POSTS, seed=42, start=datetime(2026, 8, 1, tzinfo=UTC), image_share=0.3))
    wanted = {post.post_id for post in posts}

    def scored(messages) -> set[str]:
        return {SentimentResult.model_validate_json(m.value).post_id for m in messages}

    workers = start_workers(env, tmp_path / "workers-1.log", concurrency=2)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
        await producer.start()
        try:
            for post in posts:
                await producer.send(local.kafka.posts_topic, post.model_dump_json().encode(), key=post.post_id.encode())
            await producer.flush()
        finally:
            await producer.stop()

        # Part of the stream is done, the rest is in flight or waiting: now stop both processes.
        first = await read_topic(local, local.kafka.sentiment_topic, lambda msgs: len(msgs) >= 40, timeout_s=180)
        text = await scrape(port)
        assert "monitor_worker_batch_size_bucket" in text
        assert sample_value(text, "monitor_worker_posts_total") + sample_value(
            await scrape(port + 1), "monitor_worker_posts_total") >= 1
        workers.send_signal(signal.SIGTERM)
        assert workers.wait(90) == 0, (tmp_path / "workers-1.log").read_text()[-3000:]
        assert len(scored(first)) < POSTS, "the stream finished before the signal; nothing was tested"
    finally:
        if workers.poll() is None:
            workers.kill()

    restarted = start_workers(env, tmp_path / "workers-2.log", concurrency=1)
    try:
        results = await read_topic(local, local.kafka.sentiment_topic, lambda msgs: wanted <= scored(msgs),
                                   timeout_s=240)
    except AssertionError as exc:  # say what the restarted worker did
        raise AssertionError(f"{exc}\n{(tmp_path / 'workers-2.log').read_text()[-4000:]}") from None
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(90)
    counts = Counter(SentimentResult.model_validate_json(m.value).post_id for m in results)
    assert set(counts) == wanted  # nothing lost across the shutdown, nothing invented
    assert all(count >= 1 for count in counts.values())


async def test_a_bad_post_near_the_size_limit_is_dead_lettered_and_the_worker_goes_on(stack, settings, tmp_path):
    """Its letter, whole, would be over the broker's 1 MB limit: sending it failed, the worker crashed and got
    the same post back on every restart. The letter now carries the payload's head and says so."""
    topics = {"POSTS_TOPIC": "posts-huge", "SENTIMENT_TOPIC": "sentiment-huge", "DLQ_TOPIC": "dlq-huge"}
    env = {**stack.env(), **topics, "TOPIC_PARTITIONS": str(settings.kafka.topic_partitions), "METRICS_PORT": "0",
           "WORKER_GROUP": "worker-huge-test"}
    local = settings.replace(**{name.lower(): value for name, value in topics.items()})
    good = next(iter(sample_posts(1, seed=7)))
    huge = Post(post_id="huge", created_at=datetime(2026, 1, 1, tzinfo=UTC), text="look", image=b"\x00" * 2_000_000)
    workers = start_workers(env, tmp_path / "worker.log", concurrency=1)
    try:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all",
                                    max_request_size=4 * 1024 * 1024)
        await producer.start()
        try:
            for post in (huge, good):
                await producer.send(local.kafka.posts_topic, post.model_dump_json().encode(), partition=0)
            await producer.flush()
        finally:
            await producer.stop()
        try:
            [result] = await read_topic(local, local.kafka.sentiment_topic, lambda msgs: len(msgs) >= 1, timeout_s=180)
            [dead] = await read_topic(local, local.kafka.dlq_topic, lambda msgs: len(msgs) >= 1)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{(tmp_path / 'worker.log').read_text()[-3000:]}") from None
        assert workers.poll() is None, "the worker exited"
    finally:
        workers.send_signal(signal.SIGTERM)
        workers.wait(90)
    assert SentimentResult.model_validate_json(result.value).post_id == good.post_id
    letter = DeadLetter.model_validate_json(dead.value)
    assert letter.reason.startswith("undecodable image") and "payload cut to its first" in letter.reason
    assert huge.model_dump_json().encode().startswith(letter.payload)
