"""Re-scored posts (`monitor recompute`): another model's scores of stored posts, and its buckets, kept apart from
the live counts.

`post_rescore` has one row per post and model, `rescored_bucket` that model's buckets, counted exactly as the sink
counts live posts (`monitor/store/bucketing.py`). A row goes in only once (ON CONFLICT DO NOTHING) and only its
first insert is counted, so an interrupted or repeated recompute never counts a post twice; a post the model
already scored live, or one its source deleted, is skipped, so one model's series (`trend_bucket` rows of that
model plus its `rescored_bucket` rows) holds every post at most once. A deletion takes the post's re-scores out
again (`forget_rescored`), under the same per-post locks as the sink (`lock_posts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    Boolean,
    Float,
    String,
    Text,
    and_,
    bindparam,
    column,
    delete,
    exists,
    func,
    literal,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.store.bucketing import bucket_totals
from monitor.store.db import BUCKET_KEY, EXCERPT_CHARS, post_rescore, post_sentiment, rescored_bucket
from monitor.store.post_locks import lock_posts
from schemas import Label, SentimentResult


@dataclass(frozen=True)
class StoredPost:
    """What recompute needs of a stored post to score it again and count it like the sink did."""

    post_id: str
    created_at: datetime
    text: str
    brands: list[str]
    language: str | None
    thumbnail: bytes | None
    maybe_cut: bool
    """Only an excerpt of a text that may have been longer is stored (posts stored before migration 0010)."""
    processed_at: datetime
    """When the sink stored the post: the week partition its re-scores go to."""


def _to_rescore(model_version: str, since: datetime | None, until: datetime | None) -> list:
    """Stored, undeleted posts created in [since, until) that `model_version` has not scored, live or re-scored."""
    ps, pr = post_sentiment.c, post_rescore.c
    where = [ps.deleted_at.is_(None), ps.model_version != model_version,
             ~exists().where(pr.post_id == ps.post_id, pr.model_version == model_version)]
    if since is not None:
        where.append(ps.created_at >= since)
    if until is not None:
        where.append(ps.created_at < until)
    return where


async def count_to_rescore(conn: AsyncConnection, model_version: str, since: datetime | None,
                           until: datetime | None) -> int:
    query = select(func.count()).select_from(post_sentiment).where(*_to_rescore(model_version, since, until))
    return (await conn.execute(query)).scalar_one()


async def posts_to_rescore(conn: AsyncConnection, model_version: str, since: datetime | None,
                           until: datetime | None, after: tuple[datetime, str] | None, limit: int
                           ) -> list[StoredPost]:
    """The next `limit` posts to re-score after `after` (created_at, post_id): keyset pages, in creation order."""
    ps = post_sentiment.c
    where = _to_rescore(model_version, since, until)
    if after is not None:
        where.append(tuple_(ps.created_at, ps.post_id) > tuple_(literal(after[0]), literal(after[1])))
    excerpt_only = ps.full_text.is_(None) & (func.char_length(ps.text_excerpt) >= literal(EXCERPT_CHARS))
    query = (select(ps.post_id, ps.created_at, func.coalesce(ps.full_text, ps.text_excerpt).label("text"), ps.brands,
                    ps.language, ps.thumbnail, excerpt_only.label("maybe_cut"), ps.processed_at)
             .where(*where).order_by(ps.created_at, ps.post_id).limit(limit))
    return [StoredPost(r.post_id, r.created_at, r.text, list(r.brands), r.language, r.thumbnail, r.maybe_cut,
                       r.processed_at)
            for r in await conn.execute(query)]


def rescore_row(post: StoredPost, result: SentimentResult) -> dict:
    """The `post_rescore` row of a post's new result, JSON-ready: the brands are the stored ones (what the live
    count used), the support is the new model's."""
    p = result.probabilities
    return {"post_id": post.post_id, "model_version": result.model_version, "created_at": post.created_at.isoformat(),
            "label": result.label.value, "p_negative": p.get(Label.NEGATIVE, 0.0),
            "p_neutral": p.get(Label.NEUTRAL, 0.0), "p_positive": p.get(Label.POSITIVE, 0.0),
            "polarity": result.polarity, "brands": post.brands, "language": post.language,
            "language_supported": result.language_supported, "post_processed_at": post.processed_at.isoformat()}


def _rescore_statement():
    rows = func.jsonb_to_recordset(bindparam("rows", type_=JSONB)).table_valued(
        column("post_id", String), column("model_version", String),
        column("created_at", post_rescore.c.created_at.type), column("label", String), column("p_negative", Float),
        column("p_neutral", Float), column("p_positive", Float), column("polarity", Float),
        column("brands", ARRAY(Text)), column("language", String), column("language_supported", Boolean),
        column("post_processed_at", post_rescore.c.post_processed_at.type),
    ).render_derived(name="batch", with_types=True)
    ps, pr = post_sentiment.c, post_rescore.c
    live_elsewhere = exists().where(ps.post_id == rows.c.post_id, ps.deleted_at.is_(None),
                                    ps.model_version != rows.c.model_version)
    new = (insert(post_rescore).from_select([c.name for c in rows.c], select(*rows.c).where(live_elsewhere))
           .on_conflict_do_nothing(index_elements=["post_id", "model_version", "post_processed_at"])
           .returning(pr.created_at, pr.label, pr.polarity, pr.brands, pr.language, pr.language_supported,
                      pr.model_version)
           .cte("new_rescores"))
    totals = bucket_totals(new)
    totals = totals.order_by(*totals.selected_columns[:len(BUCKET_KEY)])
    upsert = insert(rescored_bucket).from_select([*BUCKET_KEY, "negative", "neutral", "positive", "polarity_sum"],
                                                 totals)
    ex, rb = upsert.excluded, rescored_bucket.c
    counted = upsert.on_conflict_do_update(
        index_elements=["model_version", *(k for k in BUCKET_KEY if k != "model_version")],
        set_={"negative": rb.negative + ex.negative, "neutral": rb.neutral + ex.neutral,
              "positive": rb.positive + ex.positive, "polarity_sum": rb.polarity_sum + ex.polarity_sum,
              "updated_at": func.now()},
    ).cte("counted")
    return select(func.count()).select_from(new).add_cte(counted)


RESCORE_STATEMENT = _rescore_statement()
"""Returns how many of the batch's rows went in (the rest: already re-scored, scored live by the model, deleted)."""


def _forget_statement():
    pr, rb = post_rescore.c, rescored_bucket.c
    gone = (delete(post_rescore).where(pr.post_id == func.any(bindparam("post_ids", type_=ARRAY(Text))))
            .returning(pr.created_at, pr.label, pr.polarity, pr.brands, pr.language, pr.language_supported,
                       pr.model_version)
            .cte("gone"))
    totals = bucket_totals(gone).subquery("totals")
    taken = (update(rescored_bucket)
             .where(and_(*(rb[name] == totals.c[name] for name in BUCKET_KEY)))
             .values(negative=rb.negative - totals.c.negative, neutral=rb.neutral - totals.c.neutral,
                     positive=rb.positive - totals.c.positive, polarity_sum=rb.polarity_sum - totals.c.polarity_sum,
                     removed=rb.removed + totals.c.negative + totals.c.neutral + totals.c.positive,
                     updated_at=func.now())
             .cte("taken"))
    return select(func.count()).select_from(gone).add_cte(taken)


FORGET_STATEMENT = _forget_statement()


async def write_rescores(conn: AsyncConnection, rows: Sequence[dict]) -> int:
    """One batch of `rescore_row`s in the caller's transaction, under its posts' locks; returns how many counted."""
    if not rows:
        return 0
    rows = sorted({r["post_id"]: r for r in rows}.values(), key=lambda r: r["post_id"])
    await lock_posts(conn, (r["post_id"] for r in rows))
    return (await conn.execute(RESCORE_STATEMENT, {"rows": list(rows)})).scalar_one()


async def forget_rescored(conn: AsyncConnection, post_ids: Sequence[str]) -> int:
    """Deleted posts out of every model's re-scores and buckets (the caller holds their locks); returns how many
    re-scores went."""
    if not post_ids:
        return 0
    return (await conn.execute(FORGET_STATEMENT, {"post_ids": sorted(set(post_ids))})).scalar_one()
