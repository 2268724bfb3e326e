"""Effectively-once trend writes: a post counts in its buckets only the first time it is seen.

One SQL statement per batch: insert the per-post rows with ON CONFLICT DO NOTHING,
and feed only the rows that were really inserted (RETURNING) into the bucket upsert.
Redelivered or replayed results therefore never double-count, and the Kafka offset
is committed only after this transaction (the agent acks after the write returns).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.db import post_sentiment, trend_bucket
from schemas import Label, SentimentResult, TrendBucket

GRANULARITY = "minute"
EXCERPT_CHARS = 280


def _post_row(result: SentimentResult) -> dict:
    p = result.probabilities
    return {
        "post_id": result.post_id,
        "created_at": result.created_at,
        "label": result.label.value,
        "p_negative": p.get(Label.NEGATIVE, 0.0),
        "p_neutral": p.get(Label.NEUTRAL, 0.0),
        "p_positive": p.get(Label.POSITIVE, 0.0),
        "polarity": result.polarity,
        "brands": list(result.brands),
        "model_version": result.model_version,
        "text_excerpt": result.text[:EXCERPT_CHARS],
    }


def _bucket_upsert(results: Sequence[SentimentResult]):
    new_posts = (
        insert(post_sentiment)
        .values([_post_row(r) for r in results])
        .on_conflict_do_nothing(index_elements=["post_id"])
        .returning(post_sentiment.c.created_at, post_sentiment.c.label, post_sentiment.c.polarity,
                   post_sentiment.c.brands)
        .cte("new_posts")
    )
    per_brand = select(
        func.unnest(new_posts.c.brands).label("brand"),
        func.date_trunc(GRANULARITY, new_posts.c.created_at, "UTC").label("bucket_start"),
        new_posts.c.label,
        new_posts.c.polarity,
    ).subquery("per_brand")

    def count(label: Label):
        return func.count().filter(per_brand.c.label == label.value)

    totals = select(
        per_brand.c.brand, literal(GRANULARITY).label("granularity"), per_brand.c.bucket_start,
        count(Label.NEGATIVE), count(Label.NEUTRAL), count(Label.POSITIVE), func.sum(per_brand.c.polarity),
    ).group_by(per_brand.c.brand, per_brand.c.bucket_start)
    upsert = insert(trend_bucket).from_select(
        ["brand", "granularity", "bucket_start", "negative", "neutral", "positive", "polarity_sum"], totals
    )
    ex, tb = upsert.excluded, trend_bucket.c
    return upsert.on_conflict_do_update(
        index_elements=["brand", "granularity", "bucket_start"],
        set_={"negative": tb.negative + ex.negative, "neutral": tb.neutral + ex.neutral,
              "positive": tb.positive + ex.positive, "polarity_sum": tb.polarity_sum + ex.polarity_sum},
    ).returning(*trend_bucket.c)


async def write_results(engine: AsyncEngine, results: Sequence[SentimentResult]) -> list[TrendBucket]:
    """Store a batch in one transaction; return the buckets it changed, with their new totals."""
    if not results:
        return []
    async with engine.begin() as conn:
        rows = (await conn.execute(_bucket_upsert(results))).mappings().all()
    return [TrendBucket(**row) for row in rows]
