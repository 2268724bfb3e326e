"""How a set of posts adds up in the trend buckets: shared by the statement that counts new posts in and the one
that takes deleted posts out, so the two can never disagree on what a post contributed.

A bucket row is per brand, granularity, start, language, whether the model supports that language, and the model
that scored its posts (`trend_bucket`; `rescored_bucket` has the same rows for re-scored posts); the default
trend figures (the Redis cache, its announcements, the API and alerts) are the sum of a bucket's supported rows.
Writers that change supported rows first take a lock per (brand, granularity, start) (`bucket_lock_statement`), so
the supported sum they read back after their change (`supported_totals`) is exact: without it two sinks adding
posts in two languages to one bucket at once would each miss the other's, and Redis could keep the short total.
"""

from __future__ import annotations

from sqlalchemy import (
    CTE,
    BigInteger,
    Integer,
    Select,
    String,
    Subquery,
    and_,
    bindparam,
    column,
    exists,
    extract,
    func,
    select,
    true,
    union_all,
    values,
)

from monitor.store.db import BUCKET_COLUMNS, GRANULARITIES, UNKNOWN_LANGUAGE, trend_bucket
from schemas import Label

BUCKET_LOCK_CLASS = 0x5E_B0
"""The first key of the per-bucket advisory locks (`POST_LOCK_CLASS` is another: the two never meet)."""

COUNTS = ("negative", "neutral", "positive", "polarity_sum", "removed")


def _per_brand(posts: CTE) -> Subquery:
    """One row per post, brand and granularity: `posts` has `created_at`, `label`, `polarity`, `brands`,
    `language`, `language_supported` and `model_version`."""
    sizes = values(column("granularity", String), name="sizes").data([(g,) for g in GRANULARITIES])
    return select(
        func.unnest(posts.c.brands).label("brand"),
        sizes.c.granularity,
        func.date_trunc(sizes.c.granularity, posts.c.created_at, "UTC").label("bucket_start"),
        func.coalesce(posts.c.language, UNKNOWN_LANGUAGE).label("language"),
        posts.c.language_supported,
        posts.c.model_version,
        posts.c.label,
        posts.c.polarity,
    ).select_from(posts.join(sizes, true())).subquery("per_brand")


def bucket_totals(posts: CTE) -> Select:
    """Per bucket row (`BUCKET_KEY`): the posts' count per label and polarity sum.

    A post counts once for each of its brands at every granularity, in the row of its language (`und` when unknown),
    of whether the model supports it, and of the model that scored it."""
    per_brand = _per_brand(posts)

    def count(label: Label):
        return func.count().filter(per_brand.c.label == label.value).label(label.value)

    keys = (per_brand.c.brand, per_brand.c.granularity, per_brand.c.bucket_start, per_brand.c.language,
            per_brand.c.language_supported, per_brand.c.model_version)
    return (select(*keys, count(Label.NEGATIVE), count(Label.NEUTRAL), count(Label.POSITIVE),
                   func.sum(per_brand.c.polarity).label("polarity_sum"))
            .group_by(*keys))


def bucket_lock_statement(posts: CTE) -> Select:
    """Locks, until commit, every (brand, granularity, start) whose supported sum the posts change; taken in hash
    order so two writers never deadlock, and in a statement of its own before the write (as `lock_posts`)."""
    per_brand = _per_brand(posts)
    epoch = extract("epoch", per_brand.c.bucket_start).cast(BigInteger)
    key = func.hashtext(func.concat_ws("|", per_brand.c.brand, per_brand.c.granularity, epoch)).label("h")
    hashes = select(key).where(per_brand.c.language_supported).distinct().order_by(key).subquery("keys")
    lock = func.pg_advisory_xact_lock(bindparam("lock_class", BUCKET_LOCK_CLASS, type_=Integer), hashes.c.h)
    return select(func.count(lock))


def supported_totals(changed: CTE) -> Select:
    """The supported sum of every bucket that `changed` (the rows a statement just wrote, `BUCKET_COLUMNS` plus
    `language`, `language_supported` and `model_version`) touched in a supported row, as `TrendBucket` columns.

    The statement's own snapshot predates its writes, so the changed rows are taken from `changed` and the
    bucket's other supported rows from the table; the bucket lock keeps those others still."""
    tb = trend_bucket.c
    mine = select(*(changed.c[name] for name in BUCKET_COLUMNS)).where(changed.c.language_supported)
    same_bucket = and_(changed.c.language_supported, changed.c.brand == tb.brand,
                       changed.c.granularity == tb.granularity, changed.c.bucket_start == tb.bucket_start)
    others = select(*(tb[name] for name in BUCKET_COLUMNS)).where(
        tb.language_supported, exists().where(same_bucket),
        ~exists().where(same_bucket, changed.c.language == tb.language, changed.c.model_version == tb.model_version))
    rows = union_all(mine, others).subquery("supported_rows")
    keys = (rows.c.brand, rows.c.granularity, rows.c.bucket_start)
    return select(*keys, *(func.sum(rows.c[name]).label(name) for name in COUNTS)).group_by(*keys).order_by(*keys)
