"""PostgreSQL tables as SQLAlchemy Core objects, for queries.

The schema itself is owned by the Alembic migrations in `monitor/migrations/` (run
`monitor migrate`, or let the sink upgrade at start-up); these definitions must match them.
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    func,
    literal_column,
    text,
    true,
)
from sqlalchemy.dialects import postgresql  # noqa: F401 - registers to_tsvector's types before SEARCH_DOCUMENT is built
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

GRANULARITIES: tuple[str, ...] = ("minute", "hour", "day")
"""Trend bucket sizes, smallest first; each is a `date_trunc` unit, truncated in UTC."""

metadata = MetaData()

post_sentiment = Table(
    "post_sentiment",
    metadata,
    Column("post_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    Column("label", String(16), nullable=False),
    Column("p_negative", Float, nullable=False),
    Column("p_neutral", Float, nullable=False),
    Column("p_positive", Float, nullable=False),
    Column("polarity", Float, nullable=False),
    Column("brands", ARRAY(Text), nullable=False),
    Column("tagged_brands", ARRAY(Text), nullable=False),
    Column("keywords", ARRAY(Text), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("text_excerpt", Text, nullable=False),
    Column("image_ref", Text, nullable=True),
    Column("language", String(2), nullable=True),
    Column("language_supported", Boolean, nullable=False, server_default=true()),
    Column("deleted_at", DateTime(timezone=True), nullable=True),
    Column("full_text", Text, nullable=True),
    Column("source", String(64), nullable=True),
    Column("thumbnail", LargeBinary, nullable=True),
    PrimaryKeyConstraint("post_id", "processed_at"),
    Index("ix_post_sentiment_model_created", "model_version", "created_at"),
    postgresql_partition_by="RANGE (processed_at)",
)
"""One row per post, partitioned by week of `processed_at` (`monitor/store/partitions.py`, migration 0013): a
post id is unique across partitions because every writer checks them all under the post's lock
(`monitor/store/post_locks.py`), not by a constraint, which PostgreSQL allows only with the partition key. The
thumbnail of the post's image, when it had one, is TOASTed out of line and read only by id."""

SEARCH_DOCUMENT = func.to_tsvector(literal_column("'simple'::regconfig"),
                                   func.coalesce(post_sentiment.c.full_text, post_sentiment.c.text_excerpt))
"""A post's searchable text, the expression `ix_post_sentiment_search` indexes (migration 0011): search with
`SEARCH_DOCUMENT.op("@@")(func.websearch_to_tsquery(literal_column("'simple'::regconfig"), query))`."""

EXCERPT_CHARS = 280
"""`post_sentiment.text_excerpt` holds a post's first this many characters; a longer text is also in `full_text`."""

NOT_DELETED = post_sentiment.c.deleted_at.is_(None)
"""Readers that list posts or compute from them add this: a post its source deleted is kept only for deduplication."""

post_deletion = Table(
    "post_deletion",
    metadata,
    Column("post_id", String(128), primary_key=True),
    Column("deleted_at", DateTime(timezone=True), nullable=False),
    Column("source", Text, nullable=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
)

def _bucket_counts() -> list[Column]:
    """What every bucket row holds beside its key: label counts, polarity sum, deletions, volume, last change."""
    return [Column("negative", Integer, nullable=False, server_default="0"),
            Column("neutral", Integer, nullable=False, server_default="0"),
            Column("positive", Integer, nullable=False, server_default="0"),
            Column("polarity_sum", Float, nullable=False, server_default="0"),
            Column("removed", Integer, nullable=False, server_default="0"),
            Column("volume", Integer, Computed("negative + neutral + positive", persisted=True)),
            Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now())]


trend_bucket = Table(
    "trend_bucket",
    metadata,
    Column("brand", String(64), nullable=False),
    Column("granularity", String(8), nullable=False),
    Column("bucket_start", DateTime(timezone=True), nullable=False),
    Column("language", Text, nullable=False),
    Column("language_supported", Boolean, nullable=False),
    *_bucket_counts(),
    Column("model_version", String(64), nullable=False),
    PrimaryKeyConstraint("brand", "granularity", "bucket_start", "language", "language_supported", "model_version"),
    CheckConstraint("granularity IN ('minute', 'hour', 'day')", name="trend_bucket_granularity"),
    CheckConstraint(r"language ~ '^([a-z]{2}|und)$'", name="trend_bucket_language"),
    Index("ix_trend_bucket_supported", "brand", "granularity", "bucket_start",
          postgresql_where=text("language_supported")),
)

UNKNOWN_LANGUAGE = "und"
"""`trend_bucket.language` of posts whose language is unknown (ISO 639-2's code for it), and of every bucket written
before buckets had a language."""

BUCKET_KEY = ("brand", "granularity", "bucket_start", "language", "language_supported", "model_version")
"""`trend_bucket`'s primary key (and `rescored_bucket`'s, in another order): upserts conflict on it."""

UNRECORDED_MODEL = "unrecorded"
"""`trend_bucket.model_version` of counts made before buckets had a model (migration 0010)."""

BUCKET_COLUMNS = ("brand", "granularity", "bucket_start", "negative", "neutral", "positive", "polarity_sum",
                  "removed")
"""The columns that make a `schemas.TrendBucket` (the rest are derived or bookkeeping)."""



def _probabilities() -> list[Column]:
    return [Column("label", String(16), nullable=False), Column("p_negative", Float, nullable=False),
            Column("p_neutral", Float, nullable=False), Column("p_positive", Float, nullable=False),
            Column("polarity", Float, nullable=False)]


post_rescore = Table(
    "post_rescore",
    metadata,
    Column("post_id", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    *_probabilities(),
    Column("brands", ARRAY(Text), nullable=False),
    Column("language", String(2), nullable=True),
    Column("language_supported", Boolean, nullable=False),
    Column("rescored_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("post_processed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("post_id", "model_version", "post_processed_at"),
    postgresql_partition_by="RANGE (post_processed_at)",
)
"""Partitioned like `post_sentiment`, by its post's `processed_at`, so a post's re-scores leave with it."""

rescored_bucket = Table(
    "rescored_bucket",
    metadata,
    Column("model_version", String(64), nullable=False),
    Column("brand", String(64), nullable=False),
    Column("granularity", String(8), nullable=False),
    Column("bucket_start", DateTime(timezone=True), nullable=False),
    Column("language", Text, nullable=False),
    Column("language_supported", Boolean, nullable=False),
    *_bucket_counts(),
    PrimaryKeyConstraint("model_version", "brand", "granularity", "bucket_start", "language", "language_supported"),
    CheckConstraint("granularity IN ('minute', 'hour', 'day')", name="rescored_bucket_granularity"),
)

shadow_result = Table(
    "shadow_result",
    metadata,
    Column("post_id", String(128), nullable=False),
    Column("model_version", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    *_probabilities(),
    Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now(), index=True),
    PrimaryKeyConstraint("post_id", "model_version"),
)

keyphrase_post = Table(
    "keyphrase_post",
    metadata,
    Column("post_id", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("label", String(16), nullable=False),
    Column("brands", ARRAY(Text), nullable=False),
    Column("terms", ARRAY(Text), nullable=False),
    Column("counted_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("source", String(64), nullable=False),
    Column("post_processed_at", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("post_id", "post_processed_at"),
    postgresql_partition_by="RANGE (post_processed_at)",
)
"""Partitioned like `post_sentiment`, by its post's `processed_at`, so a post's terms leave with it."""

source_bucket = Table(
    "source_bucket",
    metadata,
    Column("brand", String(64), nullable=False),
    Column("granularity", String(8), nullable=False),
    Column("bucket_start", DateTime(timezone=True), nullable=False),
    Column("source", String(64), nullable=False),
    Column("posts", Integer, nullable=False),
    PrimaryKeyConstraint("brand", "granularity", "bucket_start", "source"),
    CheckConstraint("granularity IN ('hour', 'day')", name="source_bucket_granularity"),
)

UNKNOWN_SOURCE = "unknown"
"""`source_bucket.source` of posts stored before posts had a source (and `Post.source`'s default)."""

monitor_state = Table(
    "monitor_state",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

keyphrase_bucket = Table(
    "keyphrase_bucket",
    metadata,
    Column("brand", String(64), nullable=False),
    Column("granularity", String(8), nullable=False),
    Column("bucket_start", DateTime(timezone=True), nullable=False),
    Column("label", String(16), nullable=False),
    Column("phrase", Text, nullable=False),
    Column("posts", Integer, nullable=False),
    PrimaryKeyConstraint("brand", "granularity", "bucket_start", "label", "phrase"),
    CheckConstraint("granularity IN ('hour', 'day')", name="keyphrase_bucket_granularity"),
)

tracked_brand = Table(
    "tracked_brand",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("keywords", ARRAY(Text), nullable=False, server_default="{}"),
    Column("aliases", ARRAY(Text), nullable=False, server_default="{}"),
    Column("hashtags", ARRAY(Text), nullable=False, server_default="{}"),
    Column("handles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def create_engine(database_url: str) -> AsyncEngine:
    return create_async_engine(database_url, pool_pre_ping=True, pool_size=5)


def bucket_columns():
    """`trend_bucket` columns in `TrendBucket` order, for SELECT and RETURNING."""
    return [trend_bucket.c[name] for name in BUCKET_COLUMNS]
