"""Model versions: trend buckets per model, re-scored versions kept apart, shadow results, and the full text.

`trend_bucket.model_version` joins the bucket's key: each post counts in the row of the model that scored it live
(`post_sentiment.model_version`). Default figures still sum every supported row of a bucket, whatever the model,
so they read as before; `?model=` reads one model's rows.

Existing rows become 'unrecorded'. As 0008 did for languages, the share of each such row that stored, undeleted
posts contributed moves to their own model's row, so a later deletion subtracts from the row its post is in;
what retention already pruned stays 'unrecorded'. A row whose stored posts add up to more than it holds is left
whole.

`post_rescore` and `rescored_bucket` hold what `monitor recompute` scored with another model: one row per post and
model, and that model's buckets, apart from the live counts (a post never counts twice for one model: recompute
skips posts the model scored live). `shadow_result` keeps a challenger's live results (shadow scoring), compared
with the champion's in `post_sentiment` when read.

`post_sentiment.full_text` holds a post's text when it is longer than its excerpt (NULL otherwise: the excerpt is
the whole text), so recompute reads what the live model read.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

OLD_KEY = ["brand", "granularity", "bucket_start", "language", "language_supported"]
KEY = [*OLD_KEY, "model_version"]
UNRECORDED = "unrecorded"

POST_CONTRIBUTIONS = """
    SELECT b.brand, s.granularity, date_trunc(s.granularity, p.created_at, 'UTC') AS bucket_start,
           coalesce(p.language, 'und') AS language, p.language_supported, p.model_version,
           count(*) FILTER (WHERE p.label = 'negative') AS negative,
           count(*) FILTER (WHERE p.label = 'neutral') AS neutral,
           count(*) FILTER (WHERE p.label = 'positive') AS positive, sum(p.polarity) AS polarity_sum
      FROM post_sentiment AS p
     CROSS JOIN unnest(p.brands) AS b(brand)
     CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS s(granularity)
     WHERE p.deleted_at IS NULL
     GROUP BY 1, 2, 3, 4, 5, 6
"""
"""What the stored, undeleted posts add to each bucket row, the way `monitor/store/bucketing.py` counts them."""

SPLIT = f"""
WITH stored AS ({POST_CONTRIBUTIONS}),
per_row AS (
    SELECT brand, granularity, bucket_start, language, language_supported, sum(negative) AS negative,
           sum(neutral) AS neutral, sum(positive) AS positive, sum(polarity_sum) AS polarity_sum
      FROM stored
     GROUP BY brand, granularity, bucket_start, language, language_supported
),
movable AS (
    SELECT m.* FROM per_row AS m
      JOIN trend_bucket AS t USING (brand, granularity, bucket_start, language, language_supported)
     WHERE t.model_version = '{UNRECORDED}'
       AND t.negative >= m.negative AND t.neutral >= m.neutral AND t.positive >= m.positive
),
taken AS (
    UPDATE trend_bucket AS t
       SET negative = t.negative - m.negative, neutral = t.neutral - m.neutral, positive = t.positive - m.positive,
           polarity_sum = t.polarity_sum - m.polarity_sum
      FROM movable AS m
     WHERE (t.brand, t.granularity, t.bucket_start, t.language, t.language_supported, t.model_version)
         = (m.brand, m.granularity, m.bucket_start, m.language, m.language_supported, '{UNRECORDED}')
)
INSERT INTO trend_bucket ({", ".join(KEY)}, negative, neutral, positive, polarity_sum)
SELECT s.{", s.".join(KEY)}, s.negative, s.neutral, s.positive, s.polarity_sum
  FROM stored AS s
  JOIN movable AS m USING (brand, granularity, bucket_start, language, language_supported)
    ON CONFLICT ({", ".join(KEY)}) DO UPDATE
   SET negative = trend_bucket.negative + excluded.negative, neutral = trend_bucket.neutral + excluded.neutral,
       positive = trend_bucket.positive + excluded.positive,
       polarity_sum = trend_bucket.polarity_sum + excluded.polarity_sum
"""
"""Stored posts' share moves out of the 'unrecorded' rows into their model's rows (a model literally named
'unrecorded' meets its own row: the conflict clause adds it back)."""

FOLD = f"""
WITH others AS (
    DELETE FROM trend_bucket WHERE model_version <> '{UNRECORDED}' RETURNING *
)
INSERT INTO trend_bucket ({", ".join(KEY)}, negative, neutral, positive, polarity_sum, removed, updated_at)
SELECT {", ".join(OLD_KEY)}, '{UNRECORDED}', sum(negative), sum(neutral), sum(positive), sum(polarity_sum),
       sum(removed), max(updated_at)
  FROM others
 GROUP BY {", ".join(OLD_KEY)}
    ON CONFLICT ({", ".join(KEY)}) DO UPDATE
   SET negative = trend_bucket.negative + excluded.negative, neutral = trend_bucket.neutral + excluded.neutral,
       positive = trend_bucket.positive + excluded.positive,
       polarity_sum = trend_bucket.polarity_sum + excluded.polarity_sum,
       removed = trend_bucket.removed + excluded.removed,
       updated_at = greatest(trend_bucket.updated_at, excluded.updated_at)
"""
"""Downgrade: every model's rows of a bucket back into one."""


def _probabilities() -> list[sa.Column]:
    return [sa.Column("label", sa.String(16), nullable=False), sa.Column("p_negative", sa.Float(), nullable=False),
            sa.Column("p_neutral", sa.Float(), nullable=False), sa.Column("p_positive", sa.Float(), nullable=False),
            sa.Column("polarity", sa.Float(), nullable=False)]


def upgrade() -> None:
    op.add_column("post_sentiment", sa.Column("full_text", sa.Text(), nullable=True))
    op.add_column("trend_bucket", sa.Column("model_version", sa.String(64), nullable=False,
                                            server_default=UNRECORDED))
    op.alter_column("trend_bucket", "model_version", server_default=None)  # the writer always says which
    op.drop_constraint("trend_bucket_pkey", "trend_bucket", type_="primary")
    op.create_primary_key("trend_bucket_pkey", "trend_bucket", KEY)
    op.execute(SPLIT)
    op.create_index("ix_post_sentiment_model_created", "post_sentiment", ["model_version", "created_at"])

    op.create_table(
        "post_rescore",
        sa.Column("post_id", sa.String(128), sa.ForeignKey("post_sentiment.post_id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_probabilities(),
        sa.Column("brands", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("language", sa.String(2), nullable=True),
        sa.Column("language_supported", sa.Boolean(), nullable=False),
        sa.Column("rescored_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("post_id", "model_version"),
        comment="A stored post re-scored by another model (`monitor recompute`); gone with its post.",
    )
    op.create_table(
        "rescored_bucket",
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("language_supported", sa.Boolean(), nullable=False),
        sa.Column("negative", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("neutral", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("positive", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("polarity_sum", sa.Float(), nullable=False, server_default="0"),
        sa.Column("removed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("volume", sa.Integer(), sa.Computed("negative + neutral + positive", persisted=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("model_version", *OLD_KEY),
        sa.CheckConstraint("granularity IN ('minute', 'hour', 'day')", name="rescored_bucket_granularity"),
        comment="Trend buckets of `post_rescore`: a model's re-scored posts, never part of the live figures.",
    )
    op.create_table(
        "shadow_result",
        sa.Column("post_id", sa.String(128), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        *_probabilities(),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("post_id", "model_version"),
        comment="A challenger's result for a post (shadow scoring): compared with post_sentiment, never counted.",
    )
    op.create_index("ix_shadow_result_recorded_at", "shadow_result", ["recorded_at"])


def downgrade() -> None:
    op.drop_table("shadow_result")
    op.drop_table("rescored_bucket")
    op.drop_table("post_rescore")
    op.drop_index("ix_post_sentiment_model_created", "post_sentiment")
    op.execute(FOLD)
    op.drop_constraint("trend_bucket_pkey", "trend_bucket", type_="primary")
    op.create_primary_key("trend_bucket_pkey", "trend_bucket", OLD_KEY)
    op.drop_column("trend_bucket", "model_version")
    op.drop_column("post_sentiment", "full_text")
