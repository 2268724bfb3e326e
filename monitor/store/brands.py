"""Tracked brands in PostgreSQL: the API the CLI (and later the HTTP API) use to manage matching rules.

The sink notices changes through `rules_fingerprint`, so a rule added here applies to the
next batch without a restart.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import delete, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import aggregate_order_by, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.logging import get_logger
from monitor.store.brand_rules import BrandMatcher, BrandRule, brand_name, normalise_term
from monitor.store.db import tracked_brand
from monitor.store.text import StoredText, stored_text

log = get_logger(__name__)

MAX_NAME_CHARS = 64
MAX_TERM_CHARS = 200
"""What the HTTP API accepts for one keyword, alias, hashtag or handle."""


class TrackedBrand(BaseModel):
    """A brand and the terms that make a post count for it; plain types, JSON-friendly."""

    name: stored_text(min_length=1, max_length=MAX_NAME_CHARS)
    keywords: list[StoredText] = Field(default_factory=list)
    aliases: list[StoredText] = Field(default_factory=list)
    hashtags: list[StoredText] = Field(default_factory=list)
    handles: list[StoredText] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return brand_name(value)

    @field_validator("keywords", "aliases")
    @classmethod
    def _words(cls, values: list[str]) -> list[str]:
        return _unique(normalise_term(v) for v in values)

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, values: list[str]) -> list[str]:
        return _unique(normalise_term(v, "#") for v in values)

    @field_validator("handles")
    @classmethod
    def _handles(cls, values: list[str]) -> list[str]:
        return _unique(normalise_term(v, "@") for v in values)

    def rule(self) -> BrandRule:
        return BrandRule(self.name, tuple(self.keywords), tuple(self.aliases), tuple(self.hashtags),
                         tuple(self.handles))


def _unique(values: Iterable[str]) -> list[str]:
    return sorted({v for v in values if v})


_TERMS = ("keywords", "aliases", "hashtags", "handles")


async def add_brand(engine: AsyncEngine, brand: TrackedBrand, replace: bool = False) -> TrackedBrand:
    """Create a brand, or extend an existing one's terms (`replace=True` overwrites them)."""
    values = brand.model_dump(include={"name", *_TERMS})
    stmt = insert(tracked_brand).values(**values)
    if replace:
        updates = {term: stmt.excluded[term] for term in _TERMS}
    else:  # union of the stored and the new terms, sorted and without duplicates
        updates = {term: _merged(tracked_brand.c[term], stmt.excluded[term]) for term in _TERMS}
    stmt = stmt.on_conflict_do_update(index_elements=["name"], set_={**updates, "updated_at": func.now()})
    async with engine.begin() as conn:
        row = (await conn.execute(stmt.returning(*tracked_brand.c))).mappings().one()
    log.info("tracked brand saved", brand=brand.name, replace=replace)
    return TrackedBrand(**row)


def _merged(stored, new):
    """SQL: the sorted, distinct union of two text arrays (never NULL)."""
    terms = func.unnest(stored.op("||")(new)).table_valued("term").render_derived()
    return select(func.coalesce(func.array_agg(terms.c.term.distinct()), literal_column("'{}'::text[]"))) \
        .scalar_subquery()


async def list_brands(engine: AsyncEngine) -> list[TrackedBrand]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(tracked_brand).order_by(tracked_brand.c.name))).mappings()
        return [TrackedBrand(**row) for row in rows]


async def get_brand(engine: AsyncEngine, name: str) -> TrackedBrand | None:
    async with engine.connect() as conn:
        query = select(tracked_brand).where(tracked_brand.c.name == normalise_term(name))
        row = (await conn.execute(query)).mappings().one_or_none()
        return TrackedBrand(**row) if row else None


async def remove_brand(engine: AsyncEngine, name: str) -> bool:
    """Stop tracking a brand (its stored trends stay). False when it was not tracked."""
    async with engine.begin() as conn:
        result = await conn.execute(delete(tracked_brand).where(tracked_brand.c.name == normalise_term(name)))
    removed = result.rowcount > 0
    log.info("tracked brand removed" if removed else "tracked brand not found", brand=name)
    return removed


async def rules_fingerprint(conn: AsyncConnection) -> str:
    """Changes whenever a brand is added, changed or removed; one cheap query the sink runs per batch."""
    entry = func.concat(tracked_brand.c.name, "@", func.extract("epoch", tracked_brand.c.updated_at))
    digest = func.md5(func.string_agg(entry, aggregate_order_by(literal(","), tracked_brand.c.name)))
    query = select(func.count(), func.coalesce(digest, ""))
    count, md5 = (await conn.execute(query)).one()
    return f"{count}:{md5}"


async def load_matcher(conn: AsyncConnection) -> BrandMatcher:
    rows = (await conn.execute(select(tracked_brand))).mappings()
    return BrandMatcher(TrackedBrand(**row).rule() for row in rows)


class BrandRuleCache:
    """The sink's compiled rules, recompiled only when the fingerprint changes."""

    def __init__(self) -> None:
        self.fingerprint: str | None = None
        self.matcher = BrandMatcher()

    async def refresh(self, conn: AsyncConnection) -> BrandMatcher:
        fingerprint = await rules_fingerprint(conn)
        if fingerprint != self.fingerprint:
            self.matcher = await load_matcher(conn)
            self.fingerprint = fingerprint
            log.info("brand rules loaded", brands=len(self.matcher))
        return self.matcher
