"""`monitor demo`: the whole pipeline on the embedded stack with sample posts, ending in a trend table."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis
from tqdm import tqdm

from monitor.cache import cached_series
from monitor.db import create_engine
from monitor.embedded.stack import EmbeddedStack
from monitor.logging import get_logger
from monitor.pipeline import ChildProcess, wait_for_posts
from monitor.replay import as_payloads, publish
from monitor.samples import BRANDS, sample_posts
from monitor.settings import Settings
from monitor.streaming import ensure_topics
from monitor.trends import format_table, read_trends

log = get_logger(__name__)


def run_demo(settings: Settings, posts: int, timeout_s: float, echo=print) -> None:
    data_dir = settings.data_dir / "demo"
    echo(f"Starting the embedded stack (Tansu broker, PostgreSQL, Redis) under {data_dir} ...")
    with EmbeddedStack.create(data_dir) as stack:
        env = stack.env()
        for name, value in env.items():
            echo(f"  {name}={value}")
        settings = settings.model_copy(update={k.lower(): v for k, v in env.items()})
        asyncio.run(ensure_topics(settings))
        children = [ChildProcess(role, env, data_dir / "logs" / f"{role}.log").start() for role in ("worker", "sink")]
        echo(f"Started worker and sink processes (logs in {data_dir / 'logs'}).")
        try:
            asyncio.run(_publish_and_report(settings, children, posts, timeout_s, echo))
        finally:
            for child in children:
                child.stop()


async def _publish_and_report(settings: Settings, children: list[ChildProcess], count: int, timeout_s: float,
                              echo) -> None:
    echo(f"Publishing {count} SAMPLE posts (templated texts about {', '.join(BRANDS)}; "
         "photos from scikit-image), not real social data.")
    await publish(settings, as_payloads(sample_posts(count)), total=count)
    engine = create_engine(settings.database_url or "")
    try:
        with tqdm(total=count, desc="posts scored and stored", unit="post") as bar:
            def progress(stored: int) -> None:
                bar.update(stored - bar.n)

            await wait_for_posts(engine, count, children, timeout_s, progress)
        buckets = await read_trends(engine)
    finally:
        await engine.dispose()
    echo("\nSentiment trends per brand and minute, read back from PostgreSQL:\n")
    echo(format_table(buckets))
    redis = Redis.from_url(settings.redis_url or "")
    cached = sum([len(await cached_series(redis, brand)) for brand in BRANDS])
    await redis.aclose()
    echo(f"\nRedis holds {cached} cached minute buckets for the dashboards.")
    if settings.model_checkpoint == "untrained":
        echo("Note: MODEL_CHECKPOINT=untrained, so the worker ran a seeded, untrained tiny RADM: "
             "labels are not meaningful yet.")
