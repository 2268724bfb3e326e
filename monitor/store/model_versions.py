"""Which models scored the posts in the trends: live (`trend_bucket`) or re-scored (`rescored_bucket`).

Read from the day buckets, which stay small however many posts are stored: a model's counts are its posts once
per brand they mention, as the trends count them (a post without a brand is in no trend, and not here).
"""

from __future__ import annotations

from sqlalchemy import Integer, func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.db import rescored_bucket, trend_bucket


async def model_versions(engine: AsyncEngine) -> list[dict]:
    """Per model id: its live and re-scored counts and the first and last day of its live ones; newest first."""
    tb, rb = trend_bucket.c, rescored_bucket.c
    live = (select(tb.model_version, func.sum(tb.volume).label("live"), literal(0).label("rescored"),
                   func.min(tb.bucket_start).label("first"), func.max(tb.bucket_start).label("last"))
            .where(tb.granularity == "day").group_by(tb.model_version))
    rescored = (select(rb.model_version, literal(0), func.sum(rb.volume), null(), null())
                .where(rb.granularity == "day").group_by(rb.model_version))
    both = union_all(live, rescored).subquery()
    query = (select(both.c.model_version, func.sum(both.c.live).cast(Integer).label("live_counts"),
                    func.sum(both.c.rescored).cast(Integer).label("rescored_counts"),
                    func.min(both.c.first).label("first_day"), func.max(both.c.last).label("last_day"))
             .group_by(both.c.model_version)
             .order_by(func.max(both.c.last).desc().nulls_last(), both.c.model_version))
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]
