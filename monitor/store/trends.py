"""Reading trends back from PostgreSQL, the source of truth: buckets for code, plain records for analysts.

A bucket is the sum of its rows (one per language, support and model): by default the live rows of languages the
model supports, whichever model scored them, the figures every reader showed before buckets had a language or a
model; with `language`, that language's rows whether supported or not; with `model`, one model's rows: the posts it
scored live and those `monitor recompute` scored with it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import FromClause, Select, and_, func, or_, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.bucketing import COUNTS
from monitor.store.cache import HOT_WINDOWS
from monitor.store.db import GRANULARITIES, rescored_bucket, trend_bucket
from schemas import TrendBucket

ROW_COLUMNS = ("brand", "granularity", "bucket_start", "language", "language_supported", *COUNTS, "updated_at")


def bucket_rows(model: str | None = None) -> FromClause:
    """The rows a series sums: the live buckets, or one model's live and re-scored ones."""
    if model is None:
        return trend_bucket
    live = select(*(trend_bucket.c[n] for n in ROW_COLUMNS)).where(trend_bucket.c.model_version == model)
    rescored = select(*(rescored_bucket.c[n] for n in ROW_COLUMNS)).where(rescored_bucket.c.model_version == model)
    return union_all(live, rescored).subquery("model_rows")


def summed_buckets(rows: FromClause, *where) -> Select:
    """`TrendBucket` columns per (brand, granularity, start), summed over the `rows` that match `where`."""
    keys = (rows.c.brand, rows.c.granularity, rows.c.bucket_start)
    return select(*keys, *(func.sum(rows.c[name]).label(name) for name in COUNTS)).where(*where).group_by(*keys)


def rows_of(rows: FromClause, language: str | None = None):
    """Which rows a bucket sums: the supported ones, or all of one language."""
    return rows.c.language_supported if language is None else rows.c.language == language


async def read_trends(
    engine: AsyncEngine, brand: str | None = None, granularity: str = "minute",
    since: datetime | None = None, until: datetime | None = None, language: str | None = None,
    model: str | None = None,
) -> list[TrendBucket]:
    """Buckets with since <= bucket_start < until, by brand then time: supported languages, or only `language`;
    every model's live counts, or only `model`'s (`bucket_rows`)."""
    if granularity not in GRANULARITIES:
        raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}, not {granularity!r}")
    rows = bucket_rows(model)
    tb = rows.c
    where = [rows_of(rows, language), tb.granularity == granularity]
    if brand:
        where.append(tb.brand == brand.lower())
    if since:
        where.append(tb.bucket_start >= since)
    if until:
        where.append(tb.bucket_start < until)
    async with engine.connect() as conn:
        found = (await conn.execute(summed_buckets(rows, *where).order_by(tb.brand, tb.bucket_start))).mappings()
        return [TrendBucket(**row) for row in found]


async def buckets_updated_since(engine: AsyncEngine, since: datetime) -> list[TrendBucket]:
    """Buckets whose supported rows changed at or after `since` (PostgreSQL clock), inside Redis's hot windows."""
    tb = trend_bucket.c
    hot = or_(*(and_(tb.granularity == g, tb.bucket_start >= func.now() - window) for g, window in HOT_WINDOWS.items()))
    query = summed_buckets(trend_bucket, rows_of(trend_bucket), hot).having(func.max(tb.updated_at) >= since)
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
    model: str | None = None,
) -> list[dict]:
    """Trend rows for analysts: `pandas.DataFrame(await trend_records(engine, "acme", "hour"))`."""
    return [bucket_record(b) for b in await read_trends(engine, brand, granularity, since, until, language, model)]


def format_table(buckets: list[TrendBucket]) -> str:
    header = f"{'brand':<14} {'bucket (UTC)':<17} {'neg':>5} {'neu':>5} {'pos':>5} {'volume':>7} {'polarity':>9}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{b.brand:<14} {b.bucket_start:%Y-%m-%d %H:%M} {b.negative:>5} {b.neutral:>5} {b.positive:>5} "
        f"{b.volume:>7} {b.mean_polarity:>+9.3f}"
        for b in buckets
    ]
    return "\n".join(lines)
