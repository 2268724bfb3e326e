"""A brand's posts per language: what the default trend figures count, and what they leave out because the model
was not evaluated on the language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.db import trend_bucket


@dataclass(frozen=True)
class LanguageVolume:
    """One language's label counts over a window; a language the model support changed for has two."""

    language: str
    """ISO 639-1 code, or `und` when the post's language could not be told."""
    language_supported: bool
    negative: int
    neutral: int
    positive: int

    @property
    def volume(self) -> int:
        return self.negative + self.neutral + self.positive


def _window(query, since: datetime | None, until: datetime | None):
    if since is not None:
        query = query.where(trend_bucket.c.bucket_start >= since)
    if until is not None:
        query = query.where(trend_bucket.c.bucket_start < until)
    return query


async def language_volumes(engine: AsyncEngine, brand: str, granularity: str, since: datetime | None = None,
                           until: datetime | None = None) -> list[LanguageVolume]:
    """Per language and support, largest volume first; languages whose posts were all deleted are left out."""
    tb = trend_bucket.c
    counts = [func.sum(tb[label]).label(label) for label in ("negative", "neutral", "positive")]
    query = _window(select(tb.language, tb.language_supported, *counts)
                    .where(tb.brand == brand, tb.granularity == granularity), since, until)
    query = (query.group_by(tb.language, tb.language_supported).having(func.sum(tb.volume) > 0)
             .order_by(func.sum(tb.volume).desc(), tb.language, tb.language_supported.desc()))
    async with engine.connect() as conn:
        return [LanguageVolume(**row) for row in (await conn.execute(query)).mappings()]


async def language_supported(engine: AsyncEngine, brands: Sequence[str] | None, language: str, granularity: str,
                             since: datetime | None = None, until: datetime | None = None) -> bool | None:
    """Whether the model supports `language`, as its newest bucket row for these brands (None: any) in the window
    says (a model evaluated on more languages may change it); None when the window has none."""
    tb = trend_bucket.c
    query = _window(select(tb.language_supported).where(tb.granularity == granularity, tb.language == language),
                    since, until)
    if brands is not None:
        query = query.where(tb.brand.in_(brands))
    async with engine.connect() as conn:
        return await conn.scalar(query.order_by(tb.bucket_start.desc(), tb.updated_at.desc()).limit(1))
