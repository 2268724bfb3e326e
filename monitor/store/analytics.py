"""The analyst surface in Python: documented views and read-only SQL, as pandas-friendly records.

Every function returns a list of dicts with plain types (str, int, float, date, datetime),
so `pandas.DataFrame(await daily_sentiment(engine, "acme"))` needs nothing else.
"""

from __future__ import annotations

from datetime import date, datetime

import psycopg
from sqlalchemy import Date, DateTime, Float, Integer, String, column, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.store.trends import trend_records

__all__ = ["QueryError", "daily_sentiment", "net_sentiment", "readonly_query", "share_of_voice", "trend_records"]

STATEMENT_TIMEOUT_MS = 60_000
READER_ROLE = "monitor_reader"
"""Created by migration 0003: a login role holding `pg_read_all_data` and nothing else."""


def analyst_url(database_url: str, analyst_database_url: str | None = None) -> str:
    """ANALYST_DATABASE_URL, or DATABASE_URL logged in as `monitor_reader` without a password (enough where the
    server trusts local connections, as the embedded PostgreSQL does)."""
    if analyst_database_url:
        return analyst_database_url
    return make_url(database_url).set(username=READER_ROLE, password=None).render_as_string(hide_password=False)


class QueryError(Exception):
    """PostgreSQL refused an analyst's query (syntax, a write in the read-only transaction, timeout)."""

daily_brand_sentiment = table(
    "daily_brand_sentiment", column("brand", String), column("day", Date), column("negative", Integer),
    column("neutral", Integer), column("positive", Integer), column("volume", Integer),
    column("mean_polarity", Float), column("net_sentiment", Float),
)
daily_share_of_voice = table(
    "daily_share_of_voice", column("brand", String), column("day", Date), column("volume", Integer),
    column("total_volume", Integer), column("share_of_voice", Float),
)
net_sentiment_view = table(
    "net_sentiment", column("brand", String), column("granularity", String), column("bucket_start", DateTime),
    column("volume", Integer), column("net_sentiment", Float),
)


async def _records(engine: AsyncEngine, query) -> list[dict]:
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]


def _between(query, col, since, until):
    if since is not None:
        query = query.where(col >= since)
    if until is not None:
        query = query.where(col < until)
    return query


async def daily_sentiment(engine: AsyncEngine, brand: str | None = None, since: date | None = None,
                          until: date | None = None) -> list[dict]:
    """View `daily_brand_sentiment`: counts, volume, mean polarity and net sentiment per brand and UTC day."""
    v = daily_brand_sentiment.c
    query = _between(select(daily_brand_sentiment), v.day, since, until).order_by(v.brand, v.day)
    return await _records(engine, query.where(v.brand == brand.lower()) if brand else query)


async def share_of_voice(engine: AsyncEngine, since: date | None = None, until: date | None = None) -> list[dict]:
    """View `daily_share_of_voice`: each brand's share of the day's volume across brands."""
    v = daily_share_of_voice.c
    return await _records(engine, _between(select(daily_share_of_voice), v.day, since, until).order_by(v.day, v.brand))


async def net_sentiment(engine: AsyncEngine, brand: str | None = None, granularity: str = "day",
                        since: datetime | None = None, until: datetime | None = None) -> list[dict]:
    """View `net_sentiment`: (positive - negative) / volume per bucket."""
    v = net_sentiment_view.c
    query = _between(select(net_sentiment_view).where(v.granularity == granularity), v.bucket_start, since, until)
    query = query.order_by(v.brand, v.bucket_start)
    return await _records(engine, query.where(v.brand == brand.lower()) if brand else query)


async def readonly_query(engine: AsyncEngine, sql: str, limit: int | None = None) -> tuple[list[str], list[tuple]]:
    """Run one analyst's statement in a READ ONLY transaction (writes fail in PostgreSQL), then roll back.

    The engine must log in as a role without superuser (`monitor_reader` from migration 0003, see
    `analyst_url`): on a superuser connection READ ONLY could be escaped, so it is refused. It goes through
    a raw psycopg cursor as a prepared statement: `%`, `:` and `::casts` mean what
    they mean in psql, and a second statement (`SELECT 1; COMMIT; DELETE ...`) is refused instead of
    escaping the read-only transaction.
    """
    async with engine.connect() as conn:
        await conn.execute(text("SET TRANSACTION READ ONLY"))
        await conn.execute(text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(STATEMENT_TIMEOUT_MS)})
        superuser = await conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = session_user"))
        if superuser.scalar_one():
            await conn.rollback()
            raise QueryError(f"refusing ad-hoc SQL on a superuser connection (it could run programs and read server "
                             f"files); connect as {READER_ROLE} (ANALYST_DATABASE_URL)")
        try:
            driver = (await conn.get_raw_connection()).driver_connection
            async with psycopg.AsyncRawCursor(driver) as cursor:
                try:
                    await cursor.execute(sql, [], prepare=True)
                except psycopg.Error as exc:
                    raise QueryError(str(exc).strip()) from exc
                if cursor.description is None:
                    return [], []
                rows = await cursor.fetchmany(limit) if limit else await cursor.fetchall()
                return [d.name for d in cursor.description], [tuple(row) for row in rows]
        finally:
            await conn.rollback()
