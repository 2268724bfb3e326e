"""Hot swap and shadow scoring against the real broker: `monitor worker` processes (the model in its own process)
follow the model control topic that `monitor model serve` writes."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer

from core.streaming.model_control import in_share
from monitor.devstack.samples import sample_posts
from schemas import Post, SentimentResult
from tests.integration.cli_helpers import monitor
from tests.integration.kafka_helpers import read_topic
from tests.integration.test_worker import start_workers
from workers.radm import RADM, RADMConfig

pytestmark = pytest.mark.integration

POSTS = 300
OLD_ID = "radm-tiny-1-untrained"


def topic_env(stack, settings, name: str) -> dict[str, str]:
    """Topics, group and control topic of this test alone, and the tests' untrained tiny model."""
    return {**stack.env(), "POSTS_TOPIC": f"posts-{name}", "SENTIMENT_TOPIC": f"sentiment-{name}",
            "DLQ_TOPIC": f"dlq-{name}", "SHADOW_TOPIC": f"shadow-{name}", "MODEL_CONTROL_TOPIC": f"control-{name}",
            "TOPIC_PARTITIONS": str(settings.kafka.topic_partitions), "WORKER_GROUP": f"worker-{name}",
            "MODEL_CHECKPOINT": "untrained", "MODEL_RUNTIME": "torch", "WORKER_MAX_BATCH": "8", "METRICS_PORT": "0"}


def local_settings(settings, env: dict[str, str]):
    names = ("POSTS_TOPIC", "SENTIMENT_TOPIC", "DLQ_TOPIC", "SHADOW_TOPIC", "MODEL_CONTROL_TOPIC")
    return settings.replace(**{name.lower(): env[name] for name in names})


async def produce(settings, topic: str, payloads: list[tuple[bytes, bytes]], pause_s: float = 0.0) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in payloads:
            await producer.send(topic, value, key=key)
            if pause_s:
                await asyncio.sleep(pause_s)
        await producer.flush()
    finally:
        await producer.stop()


def records(posts: list[Post]) -> list[tuple[bytes, bytes]]:
    return [(post.post_id.encode(), post.model_dump_json().encode()) for post in posts]


async def wait_for_log(log_path, text: str, timeout_s: float = 120.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while text not in log_path.read_text():
        assert loop.time() < deadline, f"no {text!r} in the worker's log"
        await asyncio.sleep(0.2)


def stop(process, log_path) -> str:
    process.send_signal(signal.SIGTERM)
    process.wait(90)
    return log_path.read_text()[-4000:]


async def test_a_control_record_mid_stream_swaps_the_model_without_losing_or_repeating_a_post(
        stack, settings, tmp_path):
    env = topic_env(stack, settings, "swap")
    local = local_settings(settings, env)
    checkpoint = tmp_path / "radm-test-2.pt"
    RADM(RADMConfig.tiny(version="radm-test-2")).save(checkpoint)
    posts = list(sample_posts(POSTS, seed=11, start=datetime(2026, 9, 1, tzinfo=UTC), image_share=0.2))
    wanted = {post.post_id for post in posts}
    log_path = tmp_path / "worker.log"
    worker = start_workers(env, log_path, concurrency=1)
    try:
        await produce(local, local.kafka.posts_topic, records(posts[:POSTS // 2]))
        await read_topic(local, local.kafka.sentiment_topic, lambda msgs: len(msgs) >= 40, timeout_s=180)
        served = monitor(stack, "model", "serve", "--role", "champion", str(checkpoint), env=env)
        assert served.returncode == 0, served.stderr
        new_id = served.stdout.split('"model_id": "')[1].split('"')[0]
        assert new_id.startswith("radm-test-2@")
        await wait_for_log(log_path, "model swapped")
        await produce(local, local.kafka.posts_topic, records(posts[POSTS // 2:]))
        results = await read_topic(local, local.kafka.sentiment_topic,
                                   lambda msgs: len(msgs) >= POSTS, timeout_s=240, quiet_s=3.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_path.read_text()[-4000:]}") from None
    finally:
        log = stop(worker, log_path)
    parsed = [(m.partition, SentimentResult.model_validate_json(m.value)) for m in results]
    counts = Counter(result.post_id for _, result in parsed)
    assert set(counts) == wanted and set(counts.values()) == {1}, "a post missing or scored twice"
    per_partition: dict[int, list[str]] = defaultdict(list)
    for partition, result in parsed:
        per_partition[partition].append(result.model_version)
    for versions in per_partition.values():  # in each partition: the old model's results, then the new one's
        old = versions.count(OLD_ID)
        assert versions == [OLD_ID] * old + [new_id] * (len(versions) - old), versions
    versions = Counter(result.model_version for _, result in parsed)
    assert versions[OLD_ID] >= 40, (versions, log)
    after = {post.post_id for post in posts[POSTS // 2:]}  # sent once the new model served
    assert {result.model_version for _, result in parsed if result.post_id in after} == {new_id}
    assert "model swapped" in log and "old model closed" in log


async def test_a_challenger_serves_its_assignment_from_start_and_shadow_scores_only_its_share(
        stack, settings, tmp_path):
    env = {**topic_env(stack, settings, "shadow"), "MODEL_ROLE": "challenger", "MODEL_SHADOW_SHARE": "0.9"}
    local = local_settings(settings, env)
    checkpoint = tmp_path / "radm-test-2.pt"
    RADM(RADMConfig.tiny(version="radm-test-2")).save(checkpoint)
    nothing = monitor(stack, "model", "promote", env=env)
    assert nothing.returncode != 0 and "no challenger is assigned" in nothing.stderr, nothing.stderr
    served = monitor(stack, "model", "serve", "--role", "challenger", str(checkpoint), "--share", "0.3", env=env)
    assert served.returncode == 0, served.stderr
    listed = monitor(stack, "model", "assignments", env=env)
    assert '"champion": null' in listed.stdout and str(checkpoint) in listed.stdout, listed.stdout

    posts = list(sample_posts(POSTS, seed=12, start=datetime(2026, 9, 2, tzinfo=UTC), image_share=0.2))
    wanted = {post.post_id for post in posts if in_share(post.post_id, 0.3)}
    assert 0.2 * POSTS < len(wanted) < 0.4 * POSTS
    log_path = tmp_path / "challenger.log"
    worker = start_workers(env, log_path, concurrency=1)
    try:
        await produce(local, local.kafka.posts_topic, [(b"broken", b"{not json")] + records(posts))
        results = await read_topic(local, local.kafka.shadow_topic, lambda msgs: len(msgs) >= len(wanted),
                                   timeout_s=240, quiet_s=3.0)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{log_path.read_text()[-4000:]}") from None
    finally:
        stop(worker, log_path)
    shadow = [SentimentResult.model_validate_json(m.value) for m in results]
    assert sorted(result.post_id for result in shadow) == sorted(wanted)
    assert {result.model_version for result in shadow} == {served.stdout.split('"model_id": "')[1].split('"')[0]}
    for topic in (local.kafka.sentiment_topic, local.kafka.dlq_topic):  # nothing for the trends, no dead letters
        assert await read_topic(local, topic, lambda msgs: True, timeout_s=5, quiet_s=1.0) == []

    promoted = monitor(stack, "model", "promote", env=env)
    assert promoted.returncode == 0, promoted.stderr
    listed = monitor(stack, "model", "assignments", env=env).stdout
    assert f'"checkpoint": "{checkpoint}"' in listed.split('"challenger"')[0]  # the champion's record now
    assert '"checkpoint": "untrained"' in listed.split('"challenger"')[1] and '"share": 0.3' in listed
