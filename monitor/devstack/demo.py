"""`monitor demo`: the whole pipeline on the embedded stack with sample posts, ending in a trend table.

With `serve` (the default of `make demo`) it then starts `monitor api`, prints the dashboard URL
and keeps publishing a few sample posts per second until Ctrl-C, so the page updates live.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from connectors.cursor import CursorStore
from connectors.files import FileSource
from connectors.runner import IngestRunner
from core.logging import get_logger
from core.process import ChildProcess, free_port, stop_on_sigterm
from core.progress import progress_bar
from core.settings import Settings
from core.streaming.topics import ensure_topics
from monitor.alerts.rules import AlertKind, AlertRuleIn, create_rule, list_rules
from monitor.devstack.api_launch import start_api
from monitor.devstack.embedded.stack import EmbeddedStack
from monitor.devstack.pipeline import wait_for_model, wait_for_posts
from monitor.devstack.replay import as_payloads, publish
from monitor.devstack.samples import BRANDS, sample_posts
from monitor.store.cache import cached_series
from monitor.store.db import create_engine
from monitor.store.trends import format_table, read_trends
from schemas import Post

log = get_logger(__name__)

DEMO_ALERT_INTERVAL_S = "10"


def run_demo(settings: Settings, posts: int, timeout_s: float, echo=print, serve: bool = False,
             rate: float = 2.0) -> None:
    data_dir = settings.runtime.data_dir / "demo"
    if serve and threading.current_thread() is threading.main_thread():
        stop_on_sigterm()
    echo(f"Starting the embedded stack ({settings.runtime.embedded_broker} broker, PostgreSQL, Redis) "
         f"under {data_dir} ...")
    with EmbeddedStack.create(data_dir, broker=settings.runtime.embedded_broker) as stack:
        env = stack.env()
        for name, value in env.items():
            echo(f"  {name}={value}")
        settings = settings.replace(**{k.lower(): v for k, v in env.items()})
        asyncio.run(ensure_topics(settings))
        children = [ChildProcess.monitor(role, {**env, "METRICS_PORT": str(port)},
                                         data_dir / "logs" / f"{role}.log").start()
                    for role, port in (("worker", settings.runtime.metrics_port),
                                       ("sink", metrics_port_after(settings)))]
        echo(f"Started worker and sink processes (logs in {data_dir / 'logs'}).")
        try:
            asyncio.run(_publish_and_report(settings, children, posts, timeout_s, echo))
            if serve:
                _serve(settings, env, children, rate, echo)
        except KeyboardInterrupt:
            echo("\nStopping ...")
        finally:
            for child in reversed(children):
                child.stop()


def metrics_port_after(settings: Settings) -> int:
    """The sink's metrics port beside the worker's (0 stays off)."""
    return settings.runtime.metrics_port + 1 if settings.runtime.metrics_port else 0


async def _publish_and_report(settings: Settings, children: list[ChildProcess], count: int, timeout_s: float,
                              echo) -> None:
    echo("The worker is loading the sentiment model (its first start also reads the model files from disk) ...")
    loaded_s = await wait_for_model(settings.runtime.metrics_port, children[0], timeout_s)
    if loaded_s is not None:
        echo(f"Model loaded in {loaded_s:.1f} s.")
    export = write_sample_export(settings.runtime.data_dir / "demo" / "sample-posts.jsonl", count)
    echo(f"Importing {count} SAMPLE posts (templated texts about {', '.join(BRANDS)}; photos from scikit-image), "
         f"not real social data, through the file connector: monitor ingest file {export}")
    await import_file(settings, export)
    engine = create_engine(settings.store.database_url or "")
    try:
        with progress_bar(total=count, desc="posts scored and stored", unit="post") as bar:
            def progress(stored: int) -> None:
                bar.update(stored - bar.n)

            await wait_for_posts(engine, count, children, timeout_s, progress)
        buckets = await read_trends(engine)
    finally:
        await engine.dispose()
    echo("\nSentiment trends per brand and minute, read back from PostgreSQL:\n")
    echo(format_table(buckets))
    redis = Redis.from_url(settings.store.redis_url or "")
    cached = sum([len(await cached_series(redis, brand)) for brand in BRANDS])
    await redis.aclose()
    echo(f"\nRedis holds {cached} cached minute buckets for the dashboards.")
    if settings.model.checkpoint == "untrained":
        echo("Note: MODEL_CHECKPOINT=untrained, so the worker ran a seeded, untrained tiny RADM: "
             "labels are not meaningful yet.")


def _serve(settings: Settings, env: dict[str, str], children: list[ChildProcess], rate: float, echo) -> None:
    """Start the API (dashboard), add demo alert rules, then trickle live sample posts until Ctrl-C."""
    asyncio.run(_demo_alert_rules(settings))
    port = settings.api.port if _port_free(settings.api.host, settings.api.port) else free_port(settings.api.host)
    api_env = {**env, "ALERT_INTERVAL_S": DEMO_ALERT_INTERVAL_S}
    api, base_url = start_api(api_env, settings.runtime.data_dir / "demo" / "logs" / "api.log", port, settings.api.host)
    children.append(api)
    shown = base_url.replace("://0.0.0.0", "://127.0.0.1")
    token = f"?token={settings.api.read_token}" if settings.api.read_token else ""
    echo(f"\nDashboard: {shown}/{token}   (API docs: {shown}/docs)")
    echo(f"Publishing {rate:g} SAMPLE posts per second so the dashboard updates live; Ctrl-C stops the demo.")
    asyncio.run(_trickle(settings, children, rate))


async def _trickle(settings: Settings, children: list[ChildProcess], rate: float) -> None:
    async def watch() -> None:
        while True:
            for child in children:
                child.check_alive()
            await asyncio.sleep(1.0)

    watcher = asyncio.create_task(watch())
    publisher = asyncio.create_task(publish(settings, as_payloads(live_posts()), progress=False, rate=rate))
    done, _ = await asyncio.wait({watcher, publisher}, return_when=asyncio.FIRST_COMPLETED)
    for task in (watcher, publisher):
        task.cancel()
    for task in done:
        task.result()  # a child that died: its error and log tail


def write_sample_export(path: Path, count: int) -> Path:
    """The sample posts as a JSON Lines export, the format `monitor ingest file` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for post in sample_posts(count):
            out.write(post.model_dump_json() + "\n")
    return path


async def import_file(settings: Settings, path: Path) -> None:
    """What `monitor ingest file` does, in this process: the connector, its cursor (started afresh), the broker."""
    cursor = CursorStore(settings.runtime.data_dir / "demo" / "ingest" / "demo-samples.json")
    cursor.clear()
    summary = await IngestRunner(settings, FileSource(path, name="demo-samples"), cursor).run()
    if summary.malformed:
        raise RuntimeError(f"{summary.malformed} sample posts were malformed: see the dead-letter topic")


def live_posts(seed: int = 10_000) -> Iterator[Post]:
    """Endless sample posts stamped with the current time (ids `live-N`)."""
    for n in itertools.count():
        post = next(sample_posts(1, seed=seed + n))
        yield post.model_copy(update={"post_id": f"live-{n}", "created_at": datetime.now(UTC)})


async def _demo_alert_rules(settings: Settings) -> None:
    """A negative-share and a volume-spike rule per sample brand, so the dashboard's alert list has content."""
    engine = create_engine(settings.store.database_url or "")
    try:
        if await list_rules(engine):
            return
        for brand in BRANDS:
            await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.35,
                                                  window_minutes=15, min_volume=10, cooldown_minutes=10))
            await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.VOLUME_SPIKE, threshold=3,
                                                  window_minutes=5, baseline_minutes=60, min_volume=10))
    finally:
        await engine.dispose()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True
