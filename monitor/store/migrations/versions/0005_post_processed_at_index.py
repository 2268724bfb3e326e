"""An index on `post_sentiment.processed_at`, which retention (RETENTION_POSTS_DAYS) deletes by.

Without it every pass would scan the whole table. On a large existing table, create it by hand with
`CREATE INDEX CONCURRENTLY ix_post_sentiment_processed_at ON post_sentiment (processed_at)` before upgrading,
so the sink's writes are not blocked meanwhile; this revision then leaves it as it is.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_post_sentiment_processed_at", "post_sentiment", ["processed_at"], if_not_exists=True)


def downgrade() -> None:
    op.drop_index("ix_post_sentiment_processed_at", "post_sentiment")
