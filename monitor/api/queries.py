"""The API's reads that are not trend series: brands seen, example posts, pipeline health."""

from __future__ import annotations

import asyncio
from datetime import datetime
from urllib.parse import quote

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy import exists, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import DateTime, Text

from core.logging import error_summary, get_logger
from monitor.store.brands import list_brands
from monitor.store.db import (
    post_sentiment,
    tracked_brand,
    trend_bucket,
)
from monitor.store.posts import PostFilter, post_rows

log = get_logger(__name__)

HEALTH_SAMPLE_POSTS = 1000
"""Health reads the newest posts by created_at (indexed), not the whole table."""


async def brands_overview(engine: AsyncEngine, since: datetime | None = None,
                          until: datetime | None = None) -> list[dict]:
    """Tracked brands plus every brand that has day buckets (producer tags need no tracking), by name; the volume
    is the default trend figure's (supported languages), over the UTC days the window [since, until) touches
    (every stored day without one), so a ranking by it is the window's."""
    tracked = {b.name for b in await list_brands(engine)}
    tb = trend_bucket.c
    query = (select(tb.brand, func.sum(tb.volume).filter(tb.language_supported), func.max(tb.bucket_start))
             .where(tb.granularity == "day").group_by(tb.brand))
    if since:  # truncated by PostgreSQL: `since` may be the first day a datetime holds
        query = query.where(tb.bucket_start >= func.date_trunc("day", literal(since, DateTime(timezone=True)), "UTC"))
    if until:
        query = query.where(tb.bucket_start < until)
    async with engine.connect() as conn:
        seen = {brand: (int(volume or 0), last) for brand, volume, last in await conn.execute(query)}
    return [{"name": name, "tracked": name in tracked, "volume": seen.get(name, (0, None))[0],
             "last_bucket": seen.get(name, (0, None))[1]} for name in sorted(tracked | set(seen))]


async def unknown_brands(engine: AsyncEngine, names: list[str]) -> list[str]:
    """Those of `names` (stored form) that are neither tracked nor in any trend bucket or post, in their order.
    Posts count too, as before migration 0008 (when posts in unsupported languages had no buckets). Each test is an
    index lookup (primary keys, the GIN index on brands)."""
    if not names:
        return []
    given = func.unnest(literal(names, ARRAY(Text))).table_valued("name").render_derived()
    ps = post_sentiment.c
    query = select(given.c.name).where(or_(
        exists().where(tracked_brand.c.name == given.c.name),
        exists().where(trend_bucket.c.brand == given.c.name),
        exists().where(ps.brands.op("@>")(array([given.c.name], type_=Text)))))
    async with engine.connect() as conn:
        found = set((await conn.execute(query)).scalars())
    return [name for name in names if name not in found]


async def example_posts(engine: AsyncEngine, brand: str, label: str | None, since: datetime | None,
                        until: datetime | None, limit: int, language: str | None = None) -> list[dict]:
    """The newest posts about `brand`, optionally one label, language (`und`: unknown) and a time window; never one
    its source deleted."""
    rows = await post_rows(engine, PostFilter(brand=brand, since=since, until=until, label=label, language=language),
                           limit)
    return [{**row, "confidence": max(row["p_negative"], row["p_neutral"], row["p_positive"]),
             "thumbnail_url": thumbnail_url(row["post_id"]) if row["has_thumbnail"] else None} for row in rows]


def thumbnail_url(post_id: str) -> str:
    return f"/api/posts/{quote(post_id, safe='')}/thumbnail"


async def database_health(engine: AsyncEngine) -> dict:
    # Deleted posts count here: that the pipeline processed them is still true, and nothing of their content shows.
    ps = post_sentiment.c
    newest = select(ps.processed_at, ps.model_version).order_by(ps.created_at.desc()).limit(
        HEALTH_SAMPLE_POSTS).subquery()
    try:
        async with engine.connect() as conn:
            latest = (await conn.execute(select(func.max(newest.c.processed_at)))).scalar_one()
            versions = (await conn.execute(select(newest.c.model_version, func.count())
                                           .group_by(newest.c.model_version).order_by(func.count().desc()))).all()
    except Exception as exc:  # noqa: BLE001 - health reports any database failure instead of raising it
        log.warning("health: database unavailable", error=str(exc))
        return {"ok": False, "error": error_summary(exc)}
    return {"ok": True, "latest_processed_at": latest,
            "model_versions": [{"model_version": v, "posts": n} for v, n in versions]}


async def redis_health(redis: Redis, timeout_s: float = 2.0) -> dict:
    try:
        await asyncio.wait_for(redis.ping(), timeout_s)
    except (RedisError, OSError, TimeoutError) as exc:
        return {"ok": False, "error": str(exc) or type(exc).__name__}
    return {"ok": True}
