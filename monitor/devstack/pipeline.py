"""Wait for a running pipeline (worker and sink child processes) to store posts."""

from __future__ import annotations

import asyncio
import time
import urllib.request

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.process import ChildProcess
from monitor.store.db import post_sentiment


async def stored_post_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        try:
            return (await conn.execute(select(func.count()).select_from(post_sentiment))).scalar_one()
        except Exception:  # noqa: BLE001 - the sink creates the table on start; until then nothing is stored
            await conn.rollback()
            return 0


async def wait_for_posts(engine: AsyncEngine, expected: int, children: list[ChildProcess], timeout_s: float,
                         on_progress=None) -> int:
    """Poll PostgreSQL until `expected` posts are stored; fail fast if a child process died."""
    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        for child in children:
            child.check_alive()
        stored = await stored_post_count(engine)
        if on_progress:
            on_progress(stored)
        if stored >= expected:
            return stored
        await asyncio.sleep(0.25)
    raise TimeoutError(f"only {stored} of {expected} posts stored after {timeout_s}s")


async def wait_for_model(metrics_port: int, worker: ChildProcess, timeout_s: float) -> float | None:
    """Wait until the worker has loaded its model (its metrics show `monitor_worker_model_info`); seconds waited,
    or None when the worker serves no metrics to ask."""
    if not metrics_port:
        return None
    started = time.monotonic()
    url = f"http://127.0.0.1:{metrics_port}/metrics"
    while time.monotonic() - started < timeout_s:
        worker.check_alive()
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if b"monitor_worker_model_info{" in response.read():
                    return time.monotonic() - started
        except OSError:
            pass  # not serving yet
        await asyncio.sleep(0.25)
    raise TimeoutError(f"the worker did not load its model within {timeout_s:g}s:\n{worker.log_tail()}")
