"""Post deletions reported by sources: forget the post's text and take it out of the trends, effectively once.

One statement per batch, its text constant whatever the batch size (the batch is one JSON parameter, like
`monitor/sink/writer.py`). The deletion is recorded in `post_deletion` (ON CONFLICT DO NOTHING); only the stored posts
not already marked deleted (`deleted_at IS NULL`) are marked, lose their excerpt and image reference, and are
subtracted from their minute, hour and day buckets exactly as the writer added them: per brand, from the row of
the post's language and support. A redelivered deletion finds its post already marked and changes nothing. A
deletion that arrives before its post's result is remembered, and the writer never stores or counts that result.

A result and a deletion of the same post may be written at the same moment by two transactions (the sink's two
agents, or two sinks), each unable to see the other's uncommitted rows: both first take a transaction-scoped
advisory lock per post (`lock_posts`), so one of them waits and then sees what the other committed. The buckets'
locks follow (`monitor/store/bucketing.py`), so the supported sums read back for Redis are exact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import (
    Integer,
    String,
    Text,
    and_,
    bindparam,
    column,
    func,
    select,
    true,
    tuple_,
    update,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.bucketing import bucket_lock_statement, bucket_totals, supported_totals
from monitor.store.db import (
    BUCKET_COLUMNS,
    BUCKET_KEY,
    bucket_columns,
    post_deletion,
    post_sentiment,
    trend_bucket,
)
from monitor.store.post_locks import lock_posts
from monitor.store.rescored import forget_rescored
from schemas import PostDeletion, TrendBucket


@dataclass(frozen=True)
class AppliedDeletions:
    """What a batch of deletions changed."""

    buckets: list[TrendBucket]
    """The buckets whose supported sum it changed, with their new totals (for the Redis cache)."""
    deleted: int
    """Stored posts marked deleted now."""
    recorded: int
    """Deletions recorded now (the rest were already recorded: redeliveries, repeated reports)."""


def deletion_row(deletion: PostDeletion) -> dict:
    return {"post_id": deletion.post_id, "deleted_at": deletion.deleted_at.isoformat(), "source": deletion.source}


def _deletion_statement():
    rows = func.jsonb_to_recordset(bindparam("rows", type_=JSONB)).table_valued(
        column("post_id", String), column("deleted_at", post_deletion.c.deleted_at.type), column("source", Text),
    ).render_derived(name="rows", with_types=True)
    batch = select(*rows.c).cte("batch")
    recorded = (
        insert(post_deletion)
        .from_select(["post_id", "deleted_at", "source"], select(batch.c.post_id, batch.c.deleted_at, batch.c.source))
        .on_conflict_do_nothing(index_elements=["post_id"])
        .returning(post_deletion.c.post_id)
        .cte("recorded")
    )
    ps = post_sentiment.c
    gone = (
        update(post_sentiment)
        .where(ps.post_id == batch.c.post_id, ps.deleted_at.is_(None))
        .values(deleted_at=batch.c.deleted_at, text_excerpt="", full_text=None, image_ref=None, thumbnail=None)
        .returning(ps.post_id, ps.created_at, ps.label, ps.polarity, ps.brands, ps.language, ps.language_supported,
                   ps.model_version)
        .cte("gone")
    )
    totals = bucket_totals(gone).cte("totals")
    tb = trend_bucket.c
    row_key = tuple_(*(tb[name] for name in BUCKET_KEY))
    # Lock the buckets in key order first, as the writer's upsert does, so it and this do not deadlock (should a
    # plan ever lock otherwise, PostgreSQL breaks the deadlock and the sink retries the batch).
    locked = (
        select(*(tb[name] for name in BUCKET_KEY))
        .where(row_key.in_(select(*(totals.c[name] for name in BUCKET_KEY))))
        .order_by(*(tb[name] for name in BUCKET_KEY))
        .with_for_update()
        .cte("locked")
    )
    changed = (
        update(trend_bucket)
        .where(and_(*(tb[name] == totals.c[name] for name in BUCKET_KEY)),
               row_key.in_(select(*(locked.c[name] for name in BUCKET_KEY))))
        .values(negative=tb.negative - totals.c.negative, neutral=tb.neutral - totals.c.neutral,
                positive=tb.positive - totals.c.positive, polarity_sum=tb.polarity_sum - totals.c.polarity_sum,
                removed=tb.removed + totals.c.negative + totals.c.neutral + totals.c.positive, updated_at=func.now())
        .returning(*bucket_columns(), tb.language, tb.language_supported, tb.model_version)
        .cte("changed")
    )
    supported = supported_totals(changed).subquery("supported")
    one = values(column("one", Integer), name="one").data([(1,)])
    counts = (
        select(func.count()).select_from(recorded).scalar_subquery().label("recorded"),
        select(func.count()).select_from(gone).scalar_subquery().label("deleted"),
    )
    # One row even when no bucket changed, so the counts always come back.
    return select(*counts, *supported.c).select_from(one.outerjoin(supported, true()))


DELETION_STATEMENT = _deletion_statement()


def _bucket_lock_statement():
    ps = post_sentiment.c
    alive = select(ps.created_at, ps.label, ps.polarity, ps.brands, ps.language, ps.language_supported,
                   ps.model_version).where(
        ps.post_id == func.any(bindparam("post_ids", type_=ARRAY(Text))), ps.deleted_at.is_(None))
    return bucket_lock_statement(alive.cte("alive"))


BUCKET_LOCK_STATEMENT = _bucket_lock_statement()
"""Before the batch's statement: the buckets of the posts it will take out (their rows are still, under the posts'
locks)."""


async def apply_deletions(conn: AsyncConnection, deletions: Sequence[PostDeletion]) -> AppliedDeletions:
    """The batch's buckets' locks and statement, on a connection whose transaction the caller owns (after
    `lock_posts`)."""
    unique = list({d.post_id: d for d in reversed(deletions)}.values())  # the first report wins inside a batch
    unique.sort(key=lambda d: d.post_id)
    if not unique:
        return AppliedDeletions([], 0, 0)
    await conn.execute(BUCKET_LOCK_STATEMENT, {"post_ids": [d.post_id for d in unique]})
    rows = (await conn.execute(DELETION_STATEMENT, {"rows": [deletion_row(d) for d in unique]})).mappings().all()
    await forget_rescored(conn, [d.post_id for d in unique])
    buckets = [TrendBucket(**{name: row[name] for name in BUCKET_COLUMNS}) for row in rows if row["brand"] is not None]
    return AppliedDeletions(buckets, deleted=rows[0]["deleted"], recorded=rows[0]["recorded"])


async def write_deletions(engine: AsyncEngine, deletions: Sequence[PostDeletion]) -> AppliedDeletions:
    """Apply a batch in one transaction; the caller acks its offsets only after this returns."""
    if not deletions:
        return AppliedDeletions([], 0, 0)
    async with engine.begin() as conn:
        await lock_posts(conn, (d.post_id for d in deletions))
        return await apply_deletions(conn, deletions)
