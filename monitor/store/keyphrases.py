"""Keyphrase and source tables: posts per brand, hour and day, and label and term, or source; counted exactly once,
out again on deletion.

The sink's keyphrase pass (`count_keyphrases`, every SINK_KEYPHRASE_INTERVAL_S) reads the posts stored since the
last pass, extracts their terms (`monitor/store/terms.py`), and in one transaction records each post in
`keyphrase_post` (ON CONFLICT DO NOTHING: only posts recorded now are counted) and adds the recorded posts' terms to
`keyphrase_bucket` and the posts to `source_bucket`. It runs beside the write path, not in it, so the sink's
throughput does not pay for it.

Which posts are "since the last pass" is decided by time, safely: a post's `processed_at` is its sink
transaction's start, so every post stored with `processed_at` before the start of the oldest transaction still
running is already visible. A pass reads that horizon first (`pg_stat_activity`), then counts the posts from the
previous horizon up to it; a post in a transaction that was running meanwhile has a later `processed_at` and is
counted by a later pass (a long transaction anywhere in the database, an analyst's query say, delays the counts; it
never loses a post). Deletions are taken out the same way, by `post_deletion.recorded_at`: the deleted post's
recorded terms are subtracted and its `keyphrase_post` row removed (its text is gone by then). One pass at a time
across sinks (an advisory lock).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Integer, String, Text, bindparam, column, delete, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from monitor.store.db import (
    UNKNOWN_SOURCE,
    keyphrase_bucket,
    keyphrase_post,
    post_deletion,
    post_sentiment,
    source_bucket,
    trend_bucket,
)
from monitor.store.terms import post_terms

KEYPHRASE_LOCK_KEY = 0x5E_4B_E1
"""One keyphrase pass at a time (a single-key advisory lock, apart from retention's and the migrations')."""
MAX_POSTS_PER_PASS = 5_000
HOUR_SOURCE_DAYS = 31
"""Source counts over a window up to this long come from hour buckets (pruned with the minute buckets), longer
ones from day buckets."""
"""A pass counts at most this many posts (oldest first) and leaves the rest to the next one."""
HORIZON_STATE = "keyphrase_horizon"
"""The `monitor_state` key of the last pass's horizon."""

HORIZON = text(
    "SELECT least(now(), coalesce(min(xact_start), 'infinity'::timestamptz)) FROM pg_stat_activity "
    "WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() AND datname = current_database()"
)
"""Every post or deletion with an earlier timestamp is committed (or rolled back) and visible."""


@dataclass(frozen=True)
class KeyphrasePass:
    counted: int
    """Posts whose terms were added now."""
    removed: int
    """Deleted posts whose terms were taken out now."""
    horizon: datetime


async def _horizon(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:  # its own transaction: pg_stat_activity is read once per transaction
        return (await conn.execute(HORIZON)).scalar_one()


async def _previous_horizon(conn: AsyncConnection) -> datetime | None:
    return (await conn.execute(text("SELECT value::timestamptz FROM monitor_state WHERE key = :key"),
                               {"key": HORIZON_STATE})).scalar_one_or_none()


async def _save_horizon(conn: AsyncConnection, horizon: datetime) -> None:
    await conn.execute(text("INSERT INTO monitor_state (key, value) VALUES (:key, :value) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"),
                       {"key": HORIZON_STATE, "value": horizon.isoformat()})


def _term_rows(posts) -> list[dict]:
    return [{"post_id": p.post_id, "created_at": p.created_at.isoformat(), "label": p.label, "brands": list(p.brands),
             "terms": post_terms(p.text, p.brands), "source": p.source or UNKNOWN_SOURCE,
             "post_processed_at": p.processed_at.isoformat()} for p in posts]


def _record_statement():
    rows = func.jsonb_to_recordset(bindparam("rows", type_=JSONB)).table_valued(
        column("post_id", String), column("created_at", keyphrase_post.c.created_at.type), column("label", String),
        column("brands", ARRAY(Text)), column("terms", ARRAY(Text)), column("source", String),
        column("post_processed_at", keyphrase_post.c.post_processed_at.type),
    ).render_derived(name="batch", with_types=True)
    kp = keyphrase_post.c
    recorded = (insert(keyphrase_post).from_select([c.name for c in rows.c], select(*rows.c))
                .on_conflict_do_nothing(index_elements=["post_id", "post_processed_at"])
                .returning(kp.created_at, kp.label, kp.brands, kp.terms, kp.source).cte("recorded"))
    return _bucket_change(recorded, +1)


def _sizes_and_brands(posts):
    sizes = (func.unnest(literal_column("ARRAY['hour', 'day']::text[]")).table_valued("granularity")
             .render_derived(name="sizes"))
    brand = func.unnest(posts.c.brands).table_valued("brand").render_derived(name="brand")
    start = func.date_trunc(sizes.c.granularity, posts.c.created_at, "UTC").label("bucket_start")
    return sizes, brand, start


def _source_change(posts, sign: int):
    """Add (+1) or take out (-1) `posts` in every brand's hour and day source buckets."""
    sizes, brand, start = _sizes_and_brands(posts)
    keys = (brand.c.brand, sizes.c.granularity, start, posts.c.source)
    totals = (select(*keys, (sign * func.count()).label("posts"))
              .select_from(posts).join(brand, literal_column("true")).join(sizes, literal_column("true"))
              .where(func.char_length(brand.c.brand) <= 64)
              .group_by(*keys).order_by(*keys))
    upsert = insert(source_bucket).from_select(["brand", "granularity", "bucket_start", "source", "posts"], totals)
    return upsert.on_conflict_do_update(
        index_elements=["brand", "granularity", "bucket_start", "source"],
        set_={"posts": source_bucket.c.posts + upsert.excluded.posts},
    ).returning(source_bucket.c.posts).cte("sources_changed")


def _bucket_change(posts, sign: int):
    """Add (+1) or take out (-1) `posts`' terms in every brand's hour and day keyphrase buckets, and the posts in
    its source buckets."""
    sizes, brand, start = _sizes_and_brands(posts)
    term = func.unnest(posts.c.terms).table_valued("phrase").render_derived(name="term")
    keys = (brand.c.brand, sizes.c.granularity, start, posts.c.label, term.c.phrase)
    totals = (select(*keys, (sign * func.count()).label("posts"))
              .select_from(posts).join(brand, literal_column("true")).join(sizes, literal_column("true"))
              .join(term, literal_column("true"))
              .where(func.char_length(brand.c.brand) <= 64)
              .group_by(*keys).order_by(*keys))
    upsert = insert(keyphrase_bucket).from_select(["brand", "granularity", "bucket_start", "label", "phrase",
                                                   "posts"], totals)
    changed = upsert.on_conflict_do_update(
        index_elements=["brand", "granularity", "bucket_start", "label", "phrase"],
        set_={"posts": keyphrase_bucket.c.posts + upsert.excluded.posts},
    ).returning(keyphrase_bucket.c.posts).cte("changed")
    return select(func.count()).select_from(posts).add_cte(changed, _source_change(posts, sign))


RECORD_STATEMENT = _record_statement()
"""Returns how many of the batch's posts were recorded (and counted) now."""


def _forget_statement():
    kp = keyphrase_post.c
    gone = (delete(keyphrase_post).where(kp.post_id == func.any(bindparam("post_ids", type_=ARRAY(Text))))
            .returning(kp.created_at, kp.label, kp.brands, kp.terms, kp.source).cte("gone"))
    return _bucket_change(gone, -1)


FORGET_STATEMENT = _forget_statement()


async def _new_posts(conn: AsyncConnection, since: datetime | None, horizon: datetime):
    ps, kp = post_sentiment.c, keyphrase_post.c
    where = [ps.processed_at < horizon, ps.deleted_at.is_(None),
             ~select(kp.post_id).where(kp.post_id == ps.post_id).exists()]
    if since is not None:
        where.append(ps.processed_at >= since)
    query = (select(ps.post_id, ps.created_at, ps.processed_at, ps.label, ps.brands, ps.source,
                    func.coalesce(ps.full_text, ps.text_excerpt).label("text"))
             .where(*where).order_by(ps.processed_at).limit(MAX_POSTS_PER_PASS))
    return (await conn.execute(query)).all()


async def _deleted_since(conn: AsyncConnection, since: datetime | None, horizon: datetime) -> list[str]:
    pd = post_deletion.c
    where = [pd.recorded_at < horizon]
    if since is not None:
        where.append(pd.recorded_at >= since)
    return list((await conn.execute(select(pd.post_id).where(*where))).scalars())


async def count_keyphrases(engine: AsyncEngine) -> KeyphrasePass | None:
    """One pass; None when another process holds the pass's lock. Returns the horizon it reached."""
    horizon = await _horizon(engine)
    async with engine.begin() as conn:
        if not (await conn.execute(select(func.pg_try_advisory_xact_lock(KEYPHRASE_LOCK_KEY)))).scalar_one():
            return None
        since = await _previous_horizon(conn)
        posts = await _new_posts(conn, since, horizon)
        counted = (await conn.execute(RECORD_STATEMENT, {"rows": _term_rows(posts)})).scalar_one() if posts else 0
        deleted = await _deleted_since(conn, since, horizon)
        removed = (await conn.execute(FORGET_STATEMENT, {"post_ids": deleted})).scalar_one() if deleted else 0
        # A full page: the next pass starts at its last post (posts of one transaction share their processed_at; the
        # ones counted already are skipped).
        reached = posts[-1].processed_at if len(posts) == MAX_POSTS_PER_PASS else horizon
        await _save_horizon(conn, reached)
    return KeyphrasePass(counted, removed, reached)


@dataclass(frozen=True)
class Keyphrase:
    phrase: str
    label: str
    posts: int
    """Posts in the window with this term and label."""
    share: float
    """Of the brand's posts with this label in the window (every language)."""
    previous_posts: int
    """The same count over the window of equal length just before."""
    rising: float | None
    """Log-odds z of the term in this window against the one before (over-represented now: high); None before any
    earlier post."""


async def top_keyphrases(engine: AsyncEngine, brand: str, granularity: str, since: datetime, until: datetime,
                         label: str | None = None, top: int = 10) -> list[Keyphrase]:
    """Per label, the `top` terms in most posts over [since, until), with how they changed against the window of
    equal length just before."""
    from monitor.store.terms import log_odds_z

    kb = keyphrase_bucket.c
    before = since - (until - since)
    where = [kb.brand == brand, kb.granularity == granularity, kb.bucket_start >= before, kb.bucket_start < until,
             kb.posts > 0]
    if label is not None:
        where.append(kb.label == label)
    now_part = (kb.bucket_start >= since).label("current")
    query = (select(kb.label, kb.phrase, now_part, func.sum(kb.posts).cast(Integer).label("posts"))
             .where(*where).group_by(kb.label, kb.phrase, now_part))
    current: dict[str, Counter] = {}
    previous: dict[str, Counter] = {}
    async with engine.connect() as conn:
        for row in await conn.execute(query):
            (current if row.current else previous).setdefault(row.label, Counter())[row.phrase] += row.posts
        volumes = await _label_volumes(conn, brand, granularity, since, until)
    found = []
    for name, counts in sorted(current.items()):
        earlier = previous.get(name, Counter())
        rising = log_odds_z(counts, earlier) if earlier else {}
        total = volumes.get(name, 0)
        for phrase, posts in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]:
            found.append(Keyphrase(phrase, name, posts, min(1.0, posts / total) if total else 0.0,
                                   earlier.get(phrase, 0), rising.get(phrase)))
    return found


async def _label_volumes(conn: AsyncConnection, brand: str, granularity: str, since: datetime,
                         until: datetime) -> dict[str, int]:
    """The brand's posts per label over the window, every language and model (the live trend rows)."""
    tb = trend_bucket.c
    sums = [func.coalesce(func.sum(tb[label]), 0).label(label) for label in ("negative", "neutral", "positive")]
    row = (await conn.execute(select(*sums).where(tb.brand == brand, tb.granularity == granularity,
                                                  tb.bucket_start >= since, tb.bucket_start < until))).one()
    return dict(row._mapping)


def keyphrase_window(granularity: str, until: datetime) -> datetime:
    """The default window's start: a day of hours, or a week of days."""
    return until - (timedelta(days=1) if granularity == "hour" else timedelta(days=7))


async def source_volumes(engine: AsyncEngine, brand: str, since: datetime, until: datetime) -> list[dict]:
    """Posts per source over the UTC hours (or, for windows over `HOUR_SOURCE_DAYS`, days) that [since, until)
    touches, largest first, from the source buckets."""
    sb = source_bucket.c
    granularity = "hour" if until - since <= timedelta(days=HOUR_SOURCE_DAYS) else "day"
    start = func.date_trunc(granularity, bindparam("since_at", since, type_=source_bucket.c.bucket_start.type), "UTC")
    query = (select(sb.source, func.sum(sb.posts).cast(Integer).label("posts"))
             .where(sb.brand == brand, sb.granularity == granularity, sb.bucket_start >= start,
                    sb.bucket_start < until)
             .group_by(sb.source).having(func.sum(sb.posts) > 0)
             .order_by(func.sum(sb.posts).desc(), sb.source))
    async with engine.connect() as conn:
        return [dict(row) for row in (await conn.execute(query)).mappings()]
