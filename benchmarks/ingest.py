"""`monitor bench ingest`: events/s and memory of the Bluesky connector, one core, from a local Jetstream.

A local Jetstream (`monitor.devstack.sources`) replays the same sample events to three clients in turn, each a
process pinned to one core while the server and the broker share the others:

- a bare reader (WebSocket frames parsed as JSON, nothing else): what one core can take off this server, the
  baseline;
- `monitor ingest bluesky` with filters on (tracked terms and a language, as a brand would run it);
- `monitor ingest bluesky` without filters (every post produced).

A client's rate is the events the server sent it over the time from its subscription to its last event (for a
connector: its cursor file naming the last one, every post acknowledged by the broker). Where the server is the
limit, that rate says only "at least"; events per CPU-second of the client's own process say what its core could
take. Its memory is the peak resident set.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

from benchmarks.report import host_info, write_report
from benchmarks.worker import broker
from connectors.cursor import CursorStore
from core.logging import get_logger
from core.settings import Settings
from core.streaming.topics import ensure_topics
from monitor.devstack.embedded.stack import TANSU_CONSUMER_ENV
from monitor.devstack.sources import JetstreamReplayServer, sample_events

log = get_logger(__name__)

POST_COLLECTION = "app.bsky.feed.post"
FILTERS = ["--track", "acme,#acme,globex", "--lang", "en"]


def sent_to_a_post_subscription(events: list[dict]) -> list[dict]:
    """The events Jetstream sends to `wantedCollections=app.bsky.feed.post` (other collections' commits are not)."""
    return [e for e in events if e.get("kind") != "commit" or e["commit"].get("collection") == POST_COLLECTION]


def _pin(cores: set[int]):
    return lambda: os.sched_setaffinity(0, cores)


class _Usage:
    """Peak resident memory and CPU seconds of a process, sampled while it runs (the last sample survives its exit)."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self.cpu_s = 0.0

    def sample(self) -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.cpu_s = sum(self.process.cpu_times()[:2])


async def _run_client(server: JetstreamReplayServer, command: list[str], env: dict[str, str], core: int,
                      done, timeout_s: float) -> dict:
    subscriptions = server.connections
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               preexec_fn=_pin({core}))
    usage = _Usage(process.pid)
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + 120
        while server.connections == subscriptions:
            if process.poll() is not None or loop.time() > deadline:
                raise RuntimeError(f"{command[3:5]} never subscribed: {process.communicate()[1][-2000:]!r}")
            await asyncio.sleep(0.005)
        started = time.perf_counter()
        usage.sample()
        cpu_before = usage.cpu_s
        server.release_all()
        deadline = loop.time() + timeout_s
        while not done(process):
            usage.sample()
            if loop.time() > deadline:
                raise RuntimeError(f"{command[3:5]} did not finish in {timeout_s} s")
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        usage.sample()
        cpu_s = usage.cpu_s - cpu_before
    finally:
        if process.poll() is None:
            process.terminate()
        out, err = await asyncio.to_thread(process.communicate)
    if process.returncode not in (0, -15):
        raise RuntimeError(f"{command[3:5]} failed: {err[-2000:]!r}")
    return {"seconds": round(elapsed, 3), "peak_rss_mib": round(usage.peak / 2**20, 1), "cpu_s": round(cpu_s, 2),
            "summary": out.decode().strip()[-300:]}


async def _measure(base: Settings, events: list[dict], broker_env: dict[str, str], core: int) -> dict:
    sent = sent_to_a_post_subscription(events)
    last = sent[-1]["time_us"]
    results: dict[str, dict] = {}
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    cases = {"bare reader": None, "connector, filters on": FILTERS, "connector, no filters": []}
    for case, filters in cases.items():
        async with JetstreamReplayServer(events) as server:
            run = uuid.uuid4().hex[:8]
            topics = {"POSTS_TOPIC": f"bench-ingest-{run}", "DLQ_TOPIC": f"bench-ingest-dlq-{run}",
                      "DELETIONS_TOPIC": f"bench-ingest-deletions-{run}"}
            await ensure_topics(base.replace(**topics))
            env = {**os.environ, **broker_env, **topics, "KAFKA_BOOTSTRAP": base.kafka.bootstrap or "",
                   "LOG_LEVEL": "WARNING", "METRICS_PORT": "0", "INGEST_STATE_DIR": str(work / run),
                   "INGEST_CURSOR_FLUSH_S": "0.05"}
            if filters is None:
                url = f"{server.ws_url}?wantedCollections={POST_COLLECTION}"  # what the connector asks for
                command = [sys.executable, "-m", "benchmarks.ingest_reader", url, str(last)]

                def done(process: subprocess.Popen) -> bool:
                    return process.poll() is not None
            else:
                command = [sys.executable, "-m", "monitor", "ingest", "bluesky", "--url", server.ws_url,
                           "--image-cdn", server.url, *filters]
                cursor = CursorStore(work / run / "bluesky.json")

                def done(process: subprocess.Popen, cursor: CursorStore = cursor) -> bool:
                    return (cursor.load() or {}).get("time_us") == last

            result = await _run_client(server, command, env, core, done, timeout_s=600)
            result["events_per_s"] = round(len(sent) / result["seconds"])
            result["events_per_cpu_s"] = round(len(sent) / result["cpu_s"]) if result["cpu_s"] else None
            results[case] = result
            log.info("ingest benchmark case done", case=case, events_per_s=result["events_per_s"])
    return results


def run_ingest_benchmark(bootstrap: str | None, kind: str, events: int, out: Path | None) -> dict:
    """Measure the three clients on one core each in turn; write and return the report."""
    cores = sorted(os.sched_getaffinity(0))
    client_core, others = cores[0], set(cores[1:]) or set(cores)
    os.sched_setaffinity(0, others)  # the server (this process) and the broker stay off the client's core
    sample = sample_events(events, seed=1)
    broker_env = TANSU_CONSUMER_ENV if not bootstrap and kind == "tansu" else {}
    with broker(bootstrap, kind) as (address, broker_pid):
        if broker_pid:
            psutil.Process(broker_pid).cpu_affinity(sorted(others))
        results = asyncio.run(_measure(Settings(kafka_bootstrap=address, **{k.lower(): v for k, v in
                                                                             broker_env.items()}),
                                       sample, broker_env, client_core))
    baseline = results["bare reader"]["events_per_s"]
    report = {
        "benchmark": "ingest", "host": host_info(), "broker": "KAFKA_BOOTSTRAP" if bootstrap else f"embedded {kind}",
        "events_generated": events, "events_sent": len(sent_to_a_post_subscription(sample)),
        "client_core": client_core, "filters": " ".join(FILTERS), "results": results,
        "ratio_to_bare_reader": {case: round(r["events_per_s"] / baseline, 3) for case, r in results.items()},
    }
    write_report(report, out)
    return report
