"""Weekly range partitions of the per-post tables, so retention drops whole weeks instead of deleting rows.

`post_sentiment` is partitioned by `processed_at` (when the sink first wrote the post), and the tables with a row
per post, `post_rescore` and `keyphrase_post`, by a copy of it (`post_processed_at`): a post's rows live in the same
week in every table and leave together. Weeks start on Monday 00:00 UTC (`date_trunc('week', ...)`); a partition is
named after its first day, e.g. `post_sentiment_p20261130`.

Each table also has a DEFAULT partition. It catches rows of a week whose partition does not exist yet (a sink that
missed its maintenance for weeks, a backfill of old posts into `post_rescore`), so no insert ever fails for want of
a partition. Creating a week's partition later moves its rows out of the default first (`ensure_partitions`).

The migration creates the partitions its data needs and the coming weeks'; every sink creates the coming weeks'
at start and on each retention interval. One process at a time does either (a transaction-scoped advisory lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from core.logging import error_summary, get_logger

log = get_logger(__name__)

PARTITION_LOCK_KEY = 0x5E_A1_E9  # any constant, distinct from the migration, retention and alert locks
WEEK = timedelta(days=7)
WEEKS_AHEAD = 2
"""Partitions exist this many weeks past the current one, so a sink whose maintenance fails has weeks to recover."""
LOCK_TIMEOUT = "5s"
"""Attaching or dropping a partition waits at most this long for running queries; a pass that times out is retried
at the next interval rather than holding up the sink's writes behind its lock request."""


@dataclass(frozen=True)
class PartitionedTable:
    name: str
    key: str
    """The `timestamptz` column the table is partitioned by."""

    @property
    def default(self) -> str:
        return f"{self.name}_default"

    def partition(self, week: date) -> str:
        return f"{self.name}_p{week:%Y%m%d}"


PARTITIONED_TABLES = (PartitionedTable("post_sentiment", "processed_at"),
                      PartitionedTable("post_rescore", "post_processed_at"),
                      PartitionedTable("keyphrase_post", "post_processed_at"))


def week_of(at: datetime) -> date:
    """The Monday (UTC) starting `at`'s week."""
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def week_bounds(week: date) -> tuple[datetime, datetime]:
    start = datetime(week.year, week.month, week.day, tzinfo=UTC)
    return start, start + WEEK


def weeks_between(first: datetime, last: datetime) -> Iterator[date]:
    """Every week from `first`'s to `last`'s, both included."""
    week, end = week_of(first), week_of(last)
    while week <= end:
        yield week
        week += WEEK


def partition_week(table: PartitionedTable, partition: str) -> date | None:
    """The week a partition of `table` holds, from its name; None for the default or a name not ours."""
    prefix = f"{table.name}_p"
    if not partition.startswith(prefix):
        return None
    try:
        return datetime.strptime(partition[len(prefix):], "%Y%m%d").date()
    except ValueError:
        return None


PARTITIONS_QUERY = text(
    "SELECT c.relname FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid "
    "WHERE i.inhparent = CAST(:parent AS regclass)")

COLUMNS_QUERY = text(
    "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 "
    "AND NOT attisdropped ORDER BY attnum")


def create_table_statement(table: PartitionedTable, week: date) -> str:
    """A table shaped like `table`, to fill with the week's rows from the default partition and then attach."""
    return (f"CREATE TABLE IF NOT EXISTS {table.partition(week)} "
            f"(LIKE {table.name} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")


def move_from_default_statement(table: PartitionedTable, week: date, columns: Iterable[str]) -> str:
    names = ", ".join(columns)
    start, end = week_bounds(week)
    return (f"WITH moved AS (DELETE FROM {table.default} WHERE {table.key} >= '{start.isoformat()}' "
            f"AND {table.key} < '{end.isoformat()}' RETURNING {names}) "
            f"INSERT INTO {table.partition(week)} ({names}) SELECT {names} FROM moved")


def attach_statement(table: PartitionedTable, week: date) -> str:
    start, end = week_bounds(week)
    return (f"ALTER TABLE {table.name} ATTACH PARTITION {table.partition(week)} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')")


def create_default_statement(table: PartitionedTable) -> str:
    return f"CREATE TABLE IF NOT EXISTS {table.default} PARTITION OF {table.name} DEFAULT"


def _partitions(conn: Connection, table: PartitionedTable) -> set[str]:
    return set(conn.execute(PARTITIONS_QUERY, {"parent": table.name}).scalars())


def _columns(conn: Connection, table: PartitionedTable) -> list[str]:
    return list(conn.execute(COLUMNS_QUERY, {"table": table.name}).scalars())


def _lock(conn: Connection) -> None:
    conn.execute(select(func.pg_advisory_xact_lock(PARTITION_LOCK_KEY)))
    conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


def ensure_partitions(conn: Connection, weeks: Iterable[date]) -> list[str]:
    """Create every partitioned table's partitions for `weeks` that do not exist yet, moving their rows out of the
    default partition; returns the partitions created. Runs in the caller's transaction, which it locks (from
    async code: `await conn.run_sync(ensure_partitions, weeks)`)."""
    weeks = sorted(set(weeks))
    _lock(conn)
    created = []
    for table in PARTITIONED_TABLES:
        existing, columns = _partitions(conn, table), _columns(conn, table)
        for week in weeks:
            if table.partition(week) in existing:
                continue
            for statement in (create_table_statement(table, week), move_from_default_statement(table, week, columns),
                              attach_statement(table, week)):
                conn.execute(text(statement))
            created.append(table.partition(week))
    return created


def coming_weeks(now: datetime) -> list[date]:
    """The current week and the `WEEKS_AHEAD` after it."""
    return list(weeks_between(now, now + WEEKS_AHEAD * WEEK))


@dataclass(frozen=True)
class DroppedPartition:
    table: str
    partition: str
    rows: int


def expired_partitions(conn: Connection, before: datetime) -> list[tuple[PartitionedTable, str]]:
    """Every partition whose whole week ends at or before `before` (its rows all expired)."""
    expired = []
    for table in PARTITIONED_TABLES:
        for partition in sorted(_partitions(conn, table)):
            week = partition_week(table, partition)
            if week is not None and week_bounds(week)[1] <= before:
                expired.append((table, partition))
    return expired


def drop_expired_partitions(conn: Connection, before: datetime, dry_run: bool = False) -> list[DroppedPartition]:
    """Drop (or, with `dry_run`, only count) the partitions `expired_partitions` lists, in the caller's
    transaction, which it locks; each one's rows are counted first, for the report and the metrics."""
    _lock(conn)
    dropped = []
    for table, partition in expired_partitions(conn, before):
        rows = conn.execute(text(f"SELECT count(*) FROM {partition}")).scalar_one()
        if not dry_run:
            conn.execute(text(f"DROP TABLE {partition}"))
        dropped.append(DroppedPartition(table.name, partition, rows))
    return dropped


async def ensure_coming_partitions(engine: AsyncEngine, now: datetime | None = None) -> list[str]:
    """The current and coming weeks' partitions, in a transaction of their own; returns those created."""
    async with engine.begin() as conn:
        return await conn.run_sync(ensure_partitions, coming_weeks(now or datetime.now(UTC)))


async def run_partition_loop(engine: AsyncEngine, interval_s: float) -> None:
    """Create the coming weeks' partitions now and every `interval_s` until cancelled; a failed pass (database
    down, a lock wait timed out) is logged and tried again later: the default partitions take the rows meanwhile."""
    while True:
        try:
            created = await ensure_coming_partitions(engine)
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a database outage
            log.warning("partition pass failed, retrying next interval", error=error_summary(exc))
        else:
            if created:
                log.info("partitions created", partitions=created)
        await asyncio.sleep(interval_s)
