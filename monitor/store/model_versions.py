"""Which models scored the stored posts: live (`post_sentiment`) or re-scored (`post_rescore`)."""

from __future__ import annotations

from sqlalchemy import func, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.db import post_rescore, post_sentiment


async def model_versions(engine: AsyncEngine) -> list[dict]:
    """Per model id: posts scored live and re-scored, and the span of its live posts; newest live first."""
    ps, pr = post_sentiment.c, post_rescore.c
    live = (select(ps.model_version, func.count().label("live"), literal(0).label("rescored"),
                   func.min(ps.created_at).label("first"), func.max(ps.created_at).label("last"))
            .where(ps.deleted_at.is_(None)).group_by(ps.model_version))
    rescored = (select(pr.model_version, literal(0), func.count(), null(), null()).group_by(pr.model_version))
    both = union_all(live, rescored).subquery()
    query = (select(both.c.model_version, func.sum(both.c.live).label("live_posts"),
                    func.sum(both.c.rescored).label("rescored_posts"), func.min(both.c.first).label("first_post_at"),
                    func.max(both.c.last).label("last_post_at"))
             .group_by(both.c.model_version)
             .order_by(func.max(both.c.last).desc().nulls_last(), both.c.model_version))
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]
