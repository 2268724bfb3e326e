"""Running a connector against a local protocol server in integration tests: topics of its own, a runner task."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from connectors.cursor import CursorStore
from connectors.filters import PostFilter
from connectors.runner import IngestRunner
from connectors.source import Source
from core.settings import Settings
from core.streaming.topics import ensure_topics


async def private_topics(settings: Settings) -> Settings:
    """Settings whose posts, dead-letter and deletions topics no other test writes to."""
    run = uuid.uuid4().hex[:8]
    local = settings.replace(posts_topic=f"ingest-posts-{run}", dlq_topic=f"ingest-dlq-{run}",
                             deletions_topic=f"ingest-deletions-{run}", ingest_cursor_flush_s=0.05)
    await ensure_topics(local)
    return local


@contextlib.asynccontextmanager
async def running(settings: Settings, source: Source, cursor: CursorStore, **options) -> AsyncIterator[IngestRunner]:
    """The connector running in the background; on leaving, stopped as SIGTERM would (in-flight records finished,
    cursor saved)."""
    runner = IngestRunner(settings, source, cursor, post_filter=options.pop("post_filter", PostFilter()), **options)
    task = asyncio.create_task(runner.run())
    try:
        yield runner
    finally:
        runner.stop()
        await asyncio.wait_for(task, 30)


async def eventually(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 60.0,
                     what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)
