"""Effectively-once trend writes: a post counts in its buckets only the first time it is seen, and never once its
source has deleted it.

One SQL statement per batch. The batch travels as one JSON parameter, unpacked by `jsonb_to_recordset` (a constant
statement text whatever the batch size); per-post rows are inserted only where no partition of `post_sentiment`
holds the post yet (its weekly partitions cannot enforce a unique post id: `monitor/store/partitions.py`), and only
the rows really inserted (RETURNING) feed the minute, hour and day bucket upserts, each post in the row of its
language, of whether the model was evaluated on it and of the model's id (`monitor/store/bucketing.py`).
Redelivered or replayed results therefore never double-count, and the Kafka offset is committed only after this
transaction (the agent acks after the write returns). What comes back, for Redis, is each changed bucket's sum
over its supported rows (every model's): the default trend figures, which leave unsupported languages out.

A post already in `post_deletion` (its deletion arrived first) is neither stored nor counted;
`monitor/store/deletions.py` takes out posts deleted later. Both take per-post locks first (`lock_posts`), so a
result and a deletion written at once cannot miss each other, then per-bucket locks, so the supported sums they
read back are exact; the post locks are also what make the look for a post across partitions race-free.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from sqlalchemy import (
    Boolean,
    Float,
    String,
    Text,
    bindparam,
    column,
    exists,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.logging import get_logger
from monitor.store.brand_rules import BrandMatcher
from monitor.store.brands import BrandRuleCache
from monitor.store.bucketing import bucket_lock_statement, bucket_totals, supported_totals
from monitor.store.db import (
    BUCKET_KEY,
    EXCERPT_CHARS,
    bucket_columns,
    post_deletion,
    post_sentiment,
    trend_bucket,
)
from monitor.store.post_locks import lock_posts
from schemas import Label, SentimentResult, TrendBucket

log = get_logger(__name__)

MAX_BRAND_CHARS = 64

_NO_RULES = BrandMatcher()


def post_row(result: SentimentResult, matcher: BrandMatcher = _NO_RULES) -> dict:
    """The `post_sentiment` row of a result, JSON-ready; brands = producer tags + rule matches."""
    p = result.probabilities
    brands = [b for b in matcher.brands_for(result.text, result.keywords, result.brands) if len(b) <= MAX_BRAND_CHARS]
    return {
        "post_id": result.post_id,
        "created_at": result.created_at.isoformat(),
        "label": result.label.value,
        "p_negative": p.get(Label.NEGATIVE, 0.0),
        "p_neutral": p.get(Label.NEUTRAL, 0.0),
        "p_positive": p.get(Label.POSITIVE, 0.0),
        "polarity": result.polarity,
        "brands": brands,
        "tagged_brands": sorted(set(result.brands)),
        "keywords": list(result.keywords),
        "model_version": result.model_version,
        "text_excerpt": result.text[:EXCERPT_CHARS],
        "full_text": result.text if len(result.text) > EXCERPT_CHARS else None,
        "image_ref": result.image_ref,
        "source": result.source,
        "language": result.language,
        "language_supported": result.language_supported,
        "thumbnail": base64.b64encode(result.thumbnail).decode() if result.thumbnail else None,
    }


def _batch_rows():
    return func.jsonb_to_recordset(bindparam("rows", type_=JSONB)).table_valued(
        column("post_id", String), column("created_at", post_sentiment.c.created_at.type),
        column("label", String), column("p_negative", Float), column("p_neutral", Float),
        column("p_positive", Float), column("polarity", Float), column("brands", ARRAY(Text)),
        column("tagged_brands", ARRAY(Text)), column("keywords", ARRAY(Text)), column("model_version", String),
        column("text_excerpt", Text), column("full_text", Text), column("image_ref", Text), column("source", String),
        column("language", String), column("language_supported", Boolean), column("thumbnail", Text),
    ).render_derived(name="batch", with_types=True)


def _batch_statement():
    rows = _batch_rows()
    names = [c.name for c in rows.c]
    ps = post_sentiment.c
    values = [func.decode(c, "base64") if c.name == "thumbnail" else c for c in rows.c]
    new = ~exists().where(post_deletion.c.post_id == rows.c.post_id) & ~exists().where(ps.post_id == rows.c.post_id)
    new_posts = (
        insert(post_sentiment)
        .from_select(names, select(*values).where(new))
        .returning(ps.created_at, ps.label, ps.polarity, ps.brands, ps.language, ps.language_supported,
                   ps.model_version)
        .cte("new_posts")
    )
    totals = bucket_totals(new_posts)
    # Concurrent sinks lock shared buckets in one order.
    totals = totals.order_by(*totals.selected_columns[:len(BUCKET_KEY)])
    upsert = insert(trend_bucket).from_select([*BUCKET_KEY, "negative", "neutral", "positive", "polarity_sum"], totals)
    ex, tb = upsert.excluded, trend_bucket.c
    changed = upsert.on_conflict_do_update(
        index_elements=list(BUCKET_KEY),
        set_={"negative": tb.negative + ex.negative, "neutral": tb.neutral + ex.neutral,
              "positive": tb.positive + ex.positive, "polarity_sum": tb.polarity_sum + ex.polarity_sum,
              "updated_at": func.now()},
    ).returning(*bucket_columns(), tb.language, tb.language_supported, tb.model_version).cte("changed")
    return supported_totals(changed)


BATCH_STATEMENT = _batch_statement()
"""Returns the new supported sum of each bucket the batch changed in a supported row (`supported_totals`)."""

BUCKET_LOCK_STATEMENT = bucket_lock_statement(select(*_batch_rows().c).cte("batch_posts"))
"""Before the batch's statement: the buckets its supported posts may change (posts already stored included)."""


async def write_batch(conn: AsyncConnection, results: Sequence[SentimentResult],
                      matcher: BrandMatcher = _NO_RULES) -> list[TrendBucket]:
    """The batch's statement (after its posts' and buckets' locks), on a connection whose transaction the caller
    owns."""
    unique = list({r.post_id: r for r in reversed(results)}.values())  # first delivery wins inside a batch
    unique.sort(key=lambda r: r.post_id)  # a stable lock order on post_sentiment too
    rows = [post_row(r, matcher) for r in unique]
    await lock_posts(conn, (r.post_id for r in unique))
    await conn.execute(BUCKET_LOCK_STATEMENT, {"rows": rows})
    changed = (await conn.execute(BATCH_STATEMENT, {"rows": rows})).mappings().all()
    return [TrendBucket(**row) for row in changed]


async def write_results(engine: AsyncEngine, results: Sequence[SentimentResult],
                        rules: BrandRuleCache | None = None) -> list[TrendBucket]:
    """Store a batch in one transaction; return the buckets it changed, with their new totals.

    With `rules`, tracked-brand rules are re-read (when changed) inside the same transaction.
    """
    if not results:
        return []
    async with engine.begin() as conn:
        matcher = await rules.refresh(conn) if rules is not None else _NO_RULES
        return await write_batch(conn, results, matcher)
