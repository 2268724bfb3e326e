"""Reads of stored posts for analysts and the dashboard: filtered, full-text searched, in keyset pages or streamed,
and their thumbnails. Never a post its source deleted; newest first, on (created_at, post_id).

Keyset pages cost the same however deep they are, and posts arriving meanwhile do not shift later pages. How a
page's position travels to a client (a cursor) and how rows become JSON, CSV or Parquet is the API's business.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, func, literal, literal_column, select, tuple_
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import Text

from monitor.store.db import NOT_DELETED, SEARCH_DOCUMENT, UNKNOWN_LANGUAGE, post_sentiment


@dataclass(frozen=True)
class PostFilter:
    """Which posts of a brand: all optional but the brand and the (already bounded) window."""

    brand: str
    since: datetime | None
    until: datetime | None = None
    label: str | None = None
    language: str | None = None
    source: str | None = None
    q: str | None = None


def _columns() -> list:
    ps = post_sentiment.c
    return [ps.post_id, ps.created_at, ps.processed_at, ps.label, ps.p_negative, ps.p_neutral, ps.p_positive,
            ps.polarity, ps.model_version, ps.text_excerpt, ps.image_ref, ps.language, ps.language_supported,
            ps.source]


def filtered(where: PostFilter, *extra) -> Select:
    """The posts `where` selects, newest first (GIN index on brands; `ix_post_sentiment_search` for `q`)."""
    ps = post_sentiment.c
    query = select(*extra, *_columns()).where(ps.brands.op("@>")(literal([where.brand], ARRAY(Text))), NOT_DELETED)
    if where.since:
        query = query.where(ps.created_at >= where.since)
    if where.until:
        query = query.where(ps.created_at < where.until)
    if where.label:
        query = query.where(ps.label == where.label)
    if where.language:
        query = query.where(ps.language.is_(None) if where.language == UNKNOWN_LANGUAGE
                            else ps.language == where.language)
    if where.source:
        query = query.where(ps.source == where.source)
    if where.q:
        terms = func.websearch_to_tsquery(literal_column("'simple'::regconfig"), where.q)
        query = query.where(SEARCH_DOCUMENT.op("@@")(terms))
    return query.order_by(ps.created_at.desc(), ps.post_id.desc())


async def post_rows(engine: AsyncEngine, where: PostFilter, limit: int,
                    after: tuple[datetime, str] | None = None) -> list[dict]:
    """Up to `limit` posts older than `after` (created_at, post_id of the last one a client saw), each with
    `has_thumbnail`."""
    ps = post_sentiment.c
    query = filtered(where, ps.thumbnail.is_not(None).label("has_thumbnail"))
    if after is not None:
        query = query.where(tuple_(ps.created_at, ps.post_id) < tuple_(literal(after[0]), literal(after[1], Text)))
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query.limit(limit))).mappings()]


async def stream_posts(engine: AsyncEngine, where: PostFilter, limit: int, batch: int) -> AsyncIterator[list[dict]]:
    """Up to `limit` posts in lists of `batch`, from a server-side cursor: memory stays flat whatever the limit."""
    async with engine.connect() as conn:
        result = await conn.stream(filtered(where).limit(limit).execution_options(yield_per=batch))
        async for rows in result.mappings().partitions(batch):
            yield [dict(row) for row in rows]


async def thumbnail_jpeg(engine: AsyncEngine, post_id: str) -> bytes | None:
    """The worker's small thumbnail of a post's image; None without one (or once its source deleted it)."""
    async with engine.connect() as conn:
        return await conn.scalar(select(post_sentiment.c.thumbnail).where(post_sentiment.c.post_id == post_id))
