"""What analysts search, filter and read: post sources, full-text search, and keyphrase counts.

`post_sentiment.source` is where a post came from (`Post.source`; NULL for posts stored before 0011). A GIN index
over `to_tsvector('simple', coalesce(full_text, text_excerpt))` serves post search (`websearch_to_tsquery`): the
`simple` configuration, without stemming or stop words, because posts come in many languages.

Keyphrases are counted per brand, hour and day, and label, like the trend buckets, by the sink's keyphrase pass
(`monitor/store/keyphrases.py`): `keyphrase_post` records each counted post with the terms it contributed, so a
post is counted once whatever happens, and taken out again when its source deletes it (its text is gone by then).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SEARCH_DOCUMENT = "to_tsvector('simple'::regconfig, coalesce(full_text, text_excerpt))"
"""Readers must use this very expression for the index to serve them (`monitor/store/search.py`)."""


def upgrade() -> None:
    op.add_column("post_sentiment", sa.Column("source", sa.String(64), nullable=True))
    op.execute(f"CREATE INDEX ix_post_sentiment_search ON post_sentiment USING gin ({SEARCH_DOCUMENT})")
    op.create_table(
        "keyphrase_post",
        sa.Column("post_id", sa.String(128), sa.ForeignKey("post_sentiment.post_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("brands", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("terms", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        comment="Posts the keyphrase pass counted, with the terms they added (to take them out on deletion).",
    )
    op.create_table(
        "monitor_state",
        sa.Column("key", sa.Text(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        comment="Small facts the processes keep between runs (e.g. how far the keyphrase pass has counted).",
    )
    op.create_table(
        "keyphrase_bucket",
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("phrase", sa.Text(), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("brand", "granularity", "bucket_start", "label", "phrase"),
        sa.CheckConstraint("granularity IN ('hour', 'day')", name="keyphrase_bucket_granularity"),
        comment="Posts per brand, UTC hour or day, label and keyphrase (words and two-word phrases, stop words out).",
    )


def downgrade() -> None:
    op.drop_table("keyphrase_bucket")
    op.drop_table("monitor_state")
    op.drop_table("keyphrase_post")
    op.drop_index("ix_post_sentiment_search", "post_sentiment")
    op.drop_column("post_sentiment", "source")
