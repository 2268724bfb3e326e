"""How a set of posts adds up in the trend buckets: shared by the statement that counts new posts in and the one
that takes deleted posts out, so the two can never disagree on what a post contributed."""

from __future__ import annotations

from sqlalchemy import CTE, Select, String, column, func, select, true, values

from monitor.store.db import GRANULARITIES
from schemas import Label


def bucket_totals(posts: CTE) -> Select:
    """Per (brand, granularity, bucket_start): the posts' count per label and polarity sum, one row per bucket.

    `posts` has `created_at`, `label`, `polarity`, `brands` and `language_supported`; a post counts once for each of
    its brands at every granularity, and posts in unsupported languages not at all."""
    sizes = values(column("granularity", String), name="sizes").data([(g,) for g in GRANULARITIES])
    per_brand = select(
        func.unnest(posts.c.brands).label("brand"),
        sizes.c.granularity,
        func.date_trunc(sizes.c.granularity, posts.c.created_at, "UTC").label("bucket_start"),
        posts.c.label,
        posts.c.polarity,
    ).select_from(posts.join(sizes, true())).where(posts.c.language_supported).subquery("per_brand")

    def count(label: Label):
        return func.count().filter(per_brand.c.label == label.value).label(label.value)

    keys = (per_brand.c.brand, per_brand.c.granularity, per_brand.c.bucket_start)
    return (select(*keys, count(Label.NEGATIVE), count(Label.NEUTRAL), count(Label.POSITIVE),
                   func.sum(per_brand.c.polarity).label("polarity_sum"))
            .group_by(*keys))
