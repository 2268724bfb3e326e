"""Per-post results, trend buckets (minute/hour/day), tracked brands and analyst views.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TEXT_ARRAY = postgresql.ARRAY(sa.Text())
EMPTY = sa.text("'{}'::text[]")

VIEWS = {
    "trend_summary": (
        "Every trend bucket with volume, mean polarity (P(pos)-P(neg) averaged) and net sentiment "
        "(positive-negative)/volume. One row per brand, granularity (minute|hour|day) and UTC bucket start.",
        """
        SELECT brand, granularity, bucket_start, negative, neutral, positive, volume,
               polarity_sum / NULLIF(volume, 0) AS mean_polarity,
               (positive - negative)::float8 / NULLIF(volume, 0) AS net_sentiment
          FROM trend_bucket
        """,
    ),
    "daily_brand_sentiment": (
        "Sentiment per brand and UTC day: label counts, volume, mean polarity, net sentiment.",
        """
        SELECT brand, (bucket_start AT TIME ZONE 'UTC')::date AS day, negative, neutral, positive, volume,
               mean_polarity, net_sentiment
          FROM trend_summary
         WHERE granularity = 'day'
        """,
    ),
    "daily_share_of_voice": (
        "Share of voice per UTC day: a brand's volume over the volume of all tracked brands that day "
        "(a post about two brands counts for both).",
        """
        SELECT brand, day, volume, sum(volume) OVER (PARTITION BY day) AS total_volume,
               volume::float8 / NULLIF(sum(volume) OVER (PARTITION BY day), 0) AS share_of_voice
          FROM daily_brand_sentiment
        """,
    ),
    "net_sentiment": (
        "Net sentiment (positive-negative)/volume per brand, granularity and bucket, from -1 to +1.",
        "SELECT brand, granularity, bucket_start, volume, net_sentiment FROM trend_summary",
    ),
}


def upgrade() -> None:
    op.create_table(
        "post_sentiment",
        sa.Column("post_id", sa.String(128), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("p_negative", sa.Float(), nullable=False),
        sa.Column("p_neutral", sa.Float(), nullable=False),
        sa.Column("p_positive", sa.Float(), nullable=False),
        sa.Column("polarity", sa.Float(), nullable=False),
        sa.Column("brands", TEXT_ARRAY, nullable=False),
        sa.Column("tagged_brands", TEXT_ARRAY, nullable=False),
        sa.Column("keywords", TEXT_ARRAY, nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("text_excerpt", sa.Text(), nullable=False),
        sa.Column("image_ref", sa.Text(), nullable=True),
        comment="One row per post (the dedup key): label, probabilities, brands = producer tags + rule matches.",
    )
    op.create_index("ix_post_sentiment_created_at", "post_sentiment", ["created_at"])
    op.create_index("ix_post_sentiment_brands", "post_sentiment", ["brands"], postgresql_using="gin")

    op.create_table(
        "trend_bucket",
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("neutral", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("positive", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("polarity_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("volume", sa.Integer(), sa.Computed("negative + neutral + positive", persisted=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("brand", "granularity", "bucket_start"),
        sa.CheckConstraint("granularity IN ('minute', 'hour', 'day')", name="trend_bucket_granularity"),
        comment="Label counts and polarity sum per brand and UTC bucket; each post counted once, at its created_at.",
    )
    op.create_index("ix_trend_bucket_granularity_start", "trend_bucket", ["granularity", "bucket_start"])

    op.create_table(
        "tracked_brand",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("keywords", TEXT_ARRAY, nullable=False, server_default=EMPTY),
        sa.Column("aliases", TEXT_ARRAY, nullable=False, server_default=EMPTY),
        sa.Column("hashtags", TEXT_ARRAY, nullable=False, server_default=EMPTY),
        sa.Column("handles", TEXT_ARRAY, nullable=False, server_default=EMPTY),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        comment="Brands the sink matches in post text and keywords (word boundaries, #hashtags, @handles).",
    )

    for name, (comment, body) in VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS {body}")
        quoted = comment.replace("'", "''")  # DDL takes no bind parameters; these are constants of this file
        op.execute(f"COMMENT ON VIEW {name} IS '{quoted}'")


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    op.drop_table("tracked_brand")
    op.drop_table("trend_bucket")
    op.drop_table("post_sentiment")
