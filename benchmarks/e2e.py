"""`monitor bench e2e`: latency from a post's produce time until its trend is visible in Redis.

A private embedded stack (broker, PostgreSQL, Redis) runs a `monitor worker` and a `monitor sink`
process, as in production. Posts are produced at a fixed offered rate; each carries a brand tag of its
own (`e2e-<n>`), so the sink's announcement on `trend-updates:e2e-<n>`, published right after it wrote
the bucket to Redis, marks the moment that one post became visible to dashboards. The report gives
p50/p95/p99/max latency, the rate really offered, and how many posts never became visible (must be 0).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis
from tqdm import tqdm

from benchmarks.report import device_name, host_info, scrape, stage_means, write_report
from core.logging import get_logger
from core.process import ChildProcess, free_port
from core.settings import Settings
from monitor.devstack.embedded.stack import EmbeddedStack
from monitor.devstack.samples import sample_posts
from monitor.store.cache import updates_channel
from workers.inference.model import resolve_device

log = get_logger(__name__)

PREFIX = "e2e-"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))]


async def measure(settings: Settings, rate: float, seconds: float, image_share: float, settle_s: float,
                  children: list[ChildProcess]) -> dict:
    redis = Redis.from_url(settings.store.redis_url or "")
    pubsub = redis.pubsub()
    await pubsub.psubscribe(updates_channel(f"{PREFIX}*"))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka.bootstrap, acks="all", linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}

    async def listen() -> None:
        async for message in pubsub.listen():
            if message["type"] == "pmessage":
                brand = message["channel"].decode().split(":", 1)[1]
                seen.setdefault(brand, time.time())

    listener = asyncio.create_task(listen())
    try:
        await warm_up(producer, settings, sent, seen, children)
        sent.clear()
        seen.clear()
        count = int(rate * seconds)
        posts = list(sample_posts(count, seed=9, image_share=image_share))
        started = time.monotonic()
        for i, post in enumerate(tqdm(posts, desc=f"offering {rate:g} posts/s", unit="post")):
            await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
            brand = f"{PREFIX}{i}"
            payload = post.model_copy(update={"post_id": f"e2e-{i}", "created_at": datetime.now(UTC),
                                              "brands": [brand]}).model_dump_json().encode()
            sent[brand] = time.time()
            await producer.send(settings.kafka.posts_topic, payload)
        offered = count / (time.monotonic() - started)
        deadline = time.monotonic() + settle_s
        while len(seen) < count and time.monotonic() < deadline:
            for child in children:
                child.check_alive()
            await asyncio.sleep(0.2)
    finally:
        listener.cancel()
        await producer.stop()
        await pubsub.aclose()
        await redis.aclose()
    latencies = [seen[brand] - sent[brand] for brand in sent if brand in seen]
    return {
        "offered_posts_per_s": round(offered, 1), "posts": count, "visible": len(latencies),
        "never_visible": count - len(latencies),
        "latency_s": {name: round(percentile(latencies, share), 3) for name, share in
                      (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0))} if latencies else None,
    }


async def warm_up(producer: AIOKafkaProducer, settings: Settings, sent: dict, seen: dict,
                  children: list[ChildProcess], timeout_s: float = 180.0) -> None:
    """One post through the whole pipeline: the worker has its model, both consumer groups have joined."""
    (post,) = sample_posts(1, seed=1)
    brand = f"{PREFIX}warmup"
    await producer.send_and_wait(settings.kafka.posts_topic, post.model_copy(update={
        "post_id": "e2e-warmup", "created_at": datetime.now(UTC), "brands": [brand]}).model_dump_json().encode())
    deadline = time.monotonic() + timeout_s
    while brand not in seen:
        for child in children:
            child.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError("the warm-up post never became visible in Redis")
        await asyncio.sleep(0.1)


def run_e2e_benchmark(checkpoint: str, rate: float, seconds: float, image_share: float, worker_batch: int,
                      out: Path | None = None, settle_s: float = 60.0) -> dict:
    data_dir = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    with EmbeddedStack.create(data_dir) as stack:
        env = {**stack.env(), "MODEL_CHECKPOINT": checkpoint, "WORKER_MAX_BATCH": str(worker_batch)}
        settings = Settings(**{name.lower(): value for name, value in stack.env().items()})
        ports = {"worker": free_port(), "sink": free_port()}
        children = [ChildProcess.monitor(role, {**env, "METRICS_PORT": str(ports[role])},
                                         data_dir / "logs" / f"{role}.log").start() for role in ("worker", "sink")]
        try:
            measured = asyncio.run(measure(settings, rate, seconds, image_share, settle_s, children))
            measured["mean_stage_s"] = stage_means(scrape(ports.values()))
        finally:
            for child in children:
                child.stop()
    report = {
        "benchmark": "end-to-end latency, produce -> worker -> sink -> trend visible in Redis",
        "command": f"monitor bench e2e --model {checkpoint} --rate {rate:g} --seconds {seconds:g} "
                   f"--image-share {image_share} --worker-batch {worker_batch}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(resolve_device(Settings().model.device)),
        "host": host_info(),
        "stack": "embedded Tansu broker, PostgreSQL (fsync=off), Redis; one worker and one sink process",
        "model": checkpoint,
        **measured,
    }
    write_report(report, out)
    return report
