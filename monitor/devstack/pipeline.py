"""Wait for a running pipeline (worker and sink child processes) to store posts."""

from __future__ import annotations

import time

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
    import asyncio

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
