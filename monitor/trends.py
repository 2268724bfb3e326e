"""Reading trends back for analysts: PostgreSQL is the source of truth."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.db import trend_bucket
from schemas import TrendBucket


async def read_trends(
    engine: AsyncEngine, brand: str | None = None, granularity: str = "minute",
    since: datetime | None = None, until: datetime | None = None,
) -> list[TrendBucket]:
    query = select(trend_bucket).where(trend_bucket.c.granularity == granularity)
    if brand:
        query = query.where(trend_bucket.c.brand == brand.lower())
    if since:
        query = query.where(trend_bucket.c.bucket_start >= since)
    if until:
        query = query.where(trend_bucket.c.bucket_start < until)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(trend_bucket.c.brand, trend_bucket.c.bucket_start))).mappings()
        return [TrendBucket(**row) for row in rows]


def format_table(buckets: list[TrendBucket]) -> str:
    header = f"{'brand':<14} {'bucket (UTC)':<17} {'neg':>5} {'neu':>5} {'pos':>5} {'volume':>7} {'polarity':>9}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{b.brand:<14} {b.bucket_start:%Y-%m-%d %H:%M} {b.negative:>5} {b.neutral:>5} {b.positive:>5} "
        f"{b.volume:>7} {b.mean_polarity:>+9.3f}"
        for b in buckets
    ]
    return "\n".join(lines)
