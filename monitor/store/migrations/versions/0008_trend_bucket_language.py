"""Trend buckets per language: `language` ('und' when unknown) and `language_supported` join the bucket's key.

Every post is now counted, in the bucket of its language and of whether the model was evaluated on it; default
trend figures sum the supported rows only, so they read as before, and unsupported languages are visible apart.

Existing rows become ('und', true): they only ever counted supported posts. To keep deletions exact, the share of
each such row that posts still stored (and not deleted) contributed then moves to their own language's row: a
later deletion subtracts from the row its post is in. Whatever retention already pruned stays under 'und'. Stored
posts in unsupported languages, never counted before, are counted into their buckets now (only those still
stored: older ones are gone). A row whose stored posts add up to more than it holds (its minute bucket was pruned
and refilled by late posts) is left whole under 'und'.

The views sum the supported rows per brand and bucket, with the columns they had. `ix_trend_bucket_supported`
serves the default reads (brand, granularity, time range, supported rows); the primary key serves the upserts
and reads of one language.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-14
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

OLD_KEY = ["brand", "granularity", "bucket_start"]
KEY = [*OLD_KEY, "language", "language_supported"]

TREND_SUMMARY = {
    "0007": """
        SELECT brand, granularity, bucket_start, negative, neutral, positive, volume,
               polarity_sum / NULLIF(volume, 0) AS mean_polarity,
               (positive - negative)::float8 / NULLIF(volume, 0) AS net_sentiment
          FROM trend_bucket
        """,
    "0008": """
        SELECT brand, granularity, bucket_start, sum(negative)::integer AS negative,
               sum(neutral)::integer AS neutral, sum(positive)::integer AS positive, sum(volume)::integer AS volume,
               sum(polarity_sum) / NULLIF(sum(volume), 0) AS mean_polarity,
               (sum(positive) - sum(negative))::float8 / NULLIF(sum(volume), 0) AS net_sentiment
          FROM trend_bucket
         WHERE language_supported
         GROUP BY brand, granularity, bucket_start
        """,
}
TREND_SUMMARY_COMMENT = {
    "0007": "Every trend bucket with volume, mean polarity (P(pos)-P(neg) averaged) and net sentiment "
            "(positive-negative)/volume. One row per brand, granularity (minute|hour|day) and UTC bucket start.",
    "0008": "Every trend bucket with volume, mean polarity (P(pos)-P(neg) averaged) and net sentiment "
            "(positive-negative)/volume, over the posts in languages the model supports (trend_bucket has the "
            "others). One row per brand, granularity (minute|hour|day) and UTC bucket start.",
}

POST_CONTRIBUTIONS = """
    SELECT b.brand, s.granularity, date_trunc(s.granularity, p.created_at, 'UTC') AS bucket_start,
           coalesce(p.language, 'und') AS language, p.language_supported,
           count(*) FILTER (WHERE p.label = 'negative') AS negative,
           count(*) FILTER (WHERE p.label = 'neutral') AS neutral,
           count(*) FILTER (WHERE p.label = 'positive') AS positive, sum(p.polarity) AS polarity_sum
      FROM post_sentiment AS p
     CROSS JOIN unnest(p.brands) AS b(brand)
     CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS s(granularity)
     WHERE p.deleted_at IS NULL
     GROUP BY 1, 2, 3, 4, 5
"""
"""What the stored, undeleted posts add to each bucket, the way `monitor/store/bucketing.py` counts them."""

SPLIT = f"""
WITH stored AS ({POST_CONTRIBUTIONS}),
per_bucket AS (
    SELECT brand, granularity, bucket_start, sum(negative) AS negative, sum(neutral) AS neutral,
           sum(positive) AS positive, sum(polarity_sum) AS polarity_sum
      FROM stored
     WHERE language_supported AND language <> 'und'
     GROUP BY brand, granularity, bucket_start
),
movable AS (
    SELECT m.* FROM per_bucket AS m
      JOIN trend_bucket AS t USING (brand, granularity, bucket_start)
     WHERE t.language = 'und' AND t.language_supported
       AND t.negative >= m.negative AND t.neutral >= m.neutral AND t.positive >= m.positive
),
taken AS (
    UPDATE trend_bucket AS t
       SET negative = t.negative - m.negative, neutral = t.neutral - m.neutral, positive = t.positive - m.positive,
           polarity_sum = t.polarity_sum - m.polarity_sum
      FROM movable AS m
     WHERE (t.brand, t.granularity, t.bucket_start, t.language, t.language_supported)
         = (m.brand, m.granularity, m.bucket_start, 'und', true)
)
INSERT INTO trend_bucket (brand, granularity, bucket_start, language, language_supported, negative, neutral,
                          positive, polarity_sum)
SELECT s.brand, s.granularity, s.bucket_start, s.language, s.language_supported, s.negative, s.neutral, s.positive,
       s.polarity_sum
  FROM stored AS s
 WHERE NOT s.language_supported
    OR (s.language <> 'und'
        AND EXISTS (SELECT FROM movable AS m WHERE (m.brand, m.granularity, m.bucket_start)
                                                 = (s.brand, s.granularity, s.bucket_start)))
"""
"""Supported posts' share moves out of the 'und' rows; unsupported posts are counted in. No (language, false) row
and no supported row other than 'und' exists yet, so the INSERT meets no conflict."""

FOLD = """
WITH others AS (
    DELETE FROM trend_bucket WHERE language <> 'und' RETURNING *
)
INSERT INTO trend_bucket (brand, granularity, bucket_start, language, language_supported, negative, neutral,
                          positive, polarity_sum, removed, updated_at)
SELECT brand, granularity, bucket_start, 'und', true, sum(negative), sum(neutral), sum(positive),
       sum(polarity_sum), sum(removed), max(updated_at)
  FROM others
 GROUP BY brand, granularity, bucket_start
    ON CONFLICT (brand, granularity, bucket_start, language, language_supported) DO UPDATE
   SET negative = trend_bucket.negative + excluded.negative, neutral = trend_bucket.neutral + excluded.neutral,
       positive = trend_bucket.positive + excluded.positive,
       polarity_sum = trend_bucket.polarity_sum + excluded.polarity_sum,
       removed = trend_bucket.removed + excluded.removed,
       updated_at = greatest(trend_bucket.updated_at, excluded.updated_at)
"""
"""Downgrade: the supported rows of each bucket back into one (unsupported rows were deleted first)."""


def _trend_summary(version: str) -> None:
    op.execute(f"CREATE OR REPLACE VIEW trend_summary AS {TREND_SUMMARY[version]}")
    quoted = TREND_SUMMARY_COMMENT[version].replace("'", "''")  # DDL takes no bind parameters; constants of this file
    op.execute(f"COMMENT ON VIEW trend_summary IS '{quoted}'")


def upgrade() -> None:
    op.add_column("trend_bucket", sa.Column("language", sa.Text(), nullable=False, server_default="und"))
    op.add_column("trend_bucket", sa.Column("language_supported", sa.Boolean(), nullable=False,
                                            server_default=sa.true()))
    op.alter_column("trend_bucket", "language", server_default=None)  # the writer always says which
    op.alter_column("trend_bucket", "language_supported", server_default=None)
    op.create_check_constraint("trend_bucket_language", "trend_bucket", "language ~ '^([a-z]{2}|und)$'")
    op.drop_constraint("trend_bucket_pkey", "trend_bucket", type_="primary")
    op.create_primary_key("trend_bucket_pkey", "trend_bucket", KEY)
    op.create_index("ix_trend_bucket_supported", "trend_bucket", OLD_KEY,
                    postgresql_where=sa.text("language_supported"))
    op.execute(SPLIT)
    _trend_summary("0008")


def downgrade() -> None:
    _trend_summary("0007")
    op.execute("DELETE FROM trend_bucket WHERE NOT language_supported")
    op.execute(FOLD)
    op.drop_index("ix_trend_bucket_supported", "trend_bucket")
    op.drop_constraint("trend_bucket_pkey", "trend_bucket", type_="primary")
    op.create_primary_key("trend_bucket_pkey", "trend_bucket", OLD_KEY)
    op.drop_constraint("trend_bucket_language", "trend_bucket", type_="check")
    op.drop_column("trend_bucket", "language_supported")
    op.drop_column("trend_bucket", "language")
