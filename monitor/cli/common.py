"""What the database-facing CLI commands share: the URL check and an engine for one asyncio run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import get_settings

T = TypeVar("T")


def database_url() -> str:
    url = get_settings().store.database_url
    if not url:
        raise click.UsageError("DATABASE_URL is not set")
    return url


def run_with_engine(work: Callable[[AsyncEngine], Awaitable[T]], url: str | None = None) -> T:
    """Run `work(engine)` to completion (on `url`, default DATABASE_URL) and always dispose of the engine."""
    from monitor.store.db import create_engine

    async def run() -> T:
        engine = create_engine(url or database_url())
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def as_utc(moment: datetime | None) -> datetime | None:
    """Command-line times without an offset are UTC, as every bucket is."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
