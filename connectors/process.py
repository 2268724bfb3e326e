"""A connector as a process: its cursor file, topics, and a graceful stop on SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

from connectors.cursor import CursorStore
from connectors.filters import PostFilter
from connectors.runner import IngestRunner, IngestSummary
from connectors.source import Source
from core.logging import get_logger
from core.settings import Settings
from core.streaming.topics import ensure_topics

log = get_logger(__name__)


def cursor_path(settings: Settings, name: str) -> Path:
    """`INGEST_STATE_DIR/<name>.json` (default `DATA_DIR/ingest`): one cursor per connector name."""
    folder = settings.ingest.state_dir or settings.runtime.data_dir / "ingest"
    return folder / f"{name}.json"


async def run_connector(settings: Settings, source: Source, *, post_filter: PostFilter | None = None,
                        brands: tuple[str, ...] = (), from_start: bool = False) -> IngestSummary:
    """Create the topics if missing, then run the source until it ends or the process is asked to stop; a stop
    finishes the records in flight and saves the cursor first. `from_start` forgets the saved cursor."""
    cursor = CursorStore(cursor_path(settings, source.name))
    if from_start:
        cursor.clear()
    await ensure_topics(settings)
    runner = IngestRunner(settings, source, cursor, post_filter=post_filter, brands=brands)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runner.stop)
    try:
        return await runner.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
