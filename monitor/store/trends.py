"""Reading trends back from PostgreSQL, the source of truth: buckets for code, plain records for analysts.

A bucket is the sum of its rows (one per language and support): by default the rows of languages the model
supports, the figures every reader showed before buckets had a language; with `language`, that language's rows
whether supported or not.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.bucketing import COUNTS
from monitor.store.cache import HOT_WINDOWS
from monitor.store.db import GRANULARITIES, trend_bucket
from schemas import TrendBucket


def summed_buckets(*where) -> Select:
    """`TrendBucket` columns per (brand, granularity, start), summed over the rows that match `where`."""
    tb = trend_bucket.c
    keys = (tb.brand, tb.granularity, tb.bucket_start)
    return select(*keys, *(func.sum(tb[name]).label(name) for name in COUNTS)).where(*where).group_by(*keys)


def rows_of(language: str | None = None):
    """Which rows a bucket sums: the supported ones, or all of one language."""
    return trend_bucket.c.language_supported if language is None else trend_bucket.c.language == language


async def read_trends(
    engine: AsyncEngine, brand: str | None = None, granularity: str = "minute",
    since: datetime | None = None, until: datetime | None = None, language: str | None = None,
) -> list[TrendBucket]:
    """Buckets with since <= bucket_start < until, by brand then time: supported languages, or only `language`."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    tb = trend_bucket.c
    where = [rows_of(language), tb.granularity == granularity]
    if brand:
        where.append(tb.brand == brand.lower())
    if since:
        where.append(tb.bucket_start >= since)
    if until:
        where.append(tb.bucket_start < until)
    async with engine.connect() as conn:
        rows = (await conn.execute(summed_buckets(*where).order_by(tb.brand, tb.bucket_start))).mappings()
        return [TrendBucket(**row) for row in rows]


async def buckets_updated_since(engine: AsyncEngine, since: datetime) -> list[TrendBucket]:
    """Buckets whose supported rows changed at or after `since` (PostgreSQL clock), inside Redis's hot windows."""
    tb = trend_bucket.c
    hot = or_(*(and_(tb.granularity == g, tb.bucket_start >= func.now() - window) for g, window in HOT_WINDOWS.items()))
    query = summed_buckets(rows_of(), hot).having(func.max(tb.updated_at) >= since)
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
    since: datetime | None = None, until: datetime | None = None, language: str | None = None,
) -> list[dict]:
    """Trend rows for analysts: `pandas.DataFrame(await trend_records(engine, "acme", "hour"))`."""
    return [bucket_record(b) for b in await read_trends(engine, brand, granularity, since, until, language)]


def format_table(buckets: list[TrendBucket]) -> str:
    header = f"{'brand':<14} {'bucket (UTC)':<17} {'neg':>5} {'neu':>5} {'pos':>5} {'volume':>7} {'polarity':>9}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{b.brand:<14} {b.bucket_start:%Y-%m-%d %H:%M} {b.negative:>5} {b.neutral:>5} {b.positive:>5} "
        f"{b.volume:>7} {b.mean_polarity:>+9.3f}"
        for b in buckets
    ]
    return "\n".join(lines)
