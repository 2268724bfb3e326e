"""Reading trends back from PostgreSQL, the source of truth: buckets for code, plain records for analysts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.cache import HOT_WINDOWS
from monitor.store.db import GRANULARITIES, bucket_columns, trend_bucket
from schemas import TrendBucket


async def read_trends(
    engine: AsyncEngine, brand: str | None = None, granularity: str = "minute",
    since: datetime | None = None, until: datetime | None = None,
) -> list[TrendBucket]:
    """Buckets with since <= bucket_start < until, by brand then time."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    query = select(*bucket_columns()).where(trend_bucket.c.granularity == granularity)
    if brand:
        query = query.where(trend_bucket.c.brand == brand.lower())
    if since:
        query = query.where(trend_bucket.c.bucket_start >= since)
    if until:
        query = query.where(trend_bucket.c.bucket_start < until)
    async with engine.connect() as conn:
        rows = (await conn.execute(query.order_by(trend_bucket.c.brand, trend_bucket.c.bucket_start))).mappings()
        return [TrendBucket(**row) for row in rows]


async def buckets_updated_since(engine: AsyncEngine, since: datetime) -> list[TrendBucket]:
    """Buckets changed at or after `since` (PostgreSQL clock), inside Redis's hot windows."""
    tb = trend_bucket.c
    hot = or_(*(and_(tb.granularity == g, tb.bucket_start >= func.now() - window) for g, window in HOT_WINDOWS.items()))
    query = select(*bucket_columns()).where(tb.updated_at >= since, hot)
    async with engine.connect() as conn:
        return [TrendBucket(**row) for row in (await conn.execute(query)).mappings()]


def bucket_record(bucket: TrendBucket) -> dict:
    """A bucket as a flat dict of plain types (`pandas.DataFrame(records)` takes a list of these)."""
    return {
        "brand": bucket.brand,
        "granularity": bucket.granularity,
        "bucket_start": bucket.bucket_start,
        "negative": bucket.negative,
        "neutral": bucket.neutral,
        "positive": bucket.positive,
        "volume": bucket.volume,
        "polarity_sum": bucket.polarity_sum,
        "mean_polarity": bucket.mean_polarity,
        "net_sentiment": (bucket.positive - bucket.negative) / bucket.volume if bucket.volume else 0.0,
    }


async def trend_records(
    engine: AsyncEngine, brand: str | None = None, granularity: str = "minute",
    since: datetime | None = None, until: datetime | None = None,
) -> list[dict]:
    """Trend rows for analysts: `pandas.DataFrame(await trend_records(engine, "acme", "hour"))`."""
    return [bucket_record(b) for b in await read_trends(engine, brand, granularity, since, until)]


def format_table(buckets: list[TrendBucket]) -> str:
    header = f"{'brand':<14} {'bucket (UTC)':<17} {'neg':>5} {'neu':>5} {'pos':>5} {'volume':>7} {'polarity':>9}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{b.brand:<14} {b.bucket_start:%Y-%m-%d %H:%M} {b.negative:>5} {b.neutral:>5} {b.positive:>5} "
        f"{b.volume:>7} {b.mean_polarity:>+9.3f}"
        for b in buckets
    ]
    return "\n".join(lines)
