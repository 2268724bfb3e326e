"""Deletions reported by sources: a post's row is marked and its text dropped, its counts leave the trend buckets.

`post_deletion` remembers each reported deletion, also for posts whose result has not arrived yet, so that result
is never counted; retention prunes it like `post_sentiment`. `trend_bucket.removed` counts the posts taken out of
a bucket: with it, `volume + 2 * removed` grows with every change of the bucket, which is what Redis compares to
keep the newest snapshot now that a bucket's volume can also go down.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("post_sentiment", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("trend_bucket", sa.Column("removed", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "post_deletion",
        sa.Column("post_id", sa.String(128), primary_key=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        comment="Posts their source reported deleted; their results are no longer stored or counted.",
    )
    op.create_index("ix_post_deletion_recorded_at", "post_deletion", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_post_deletion_recorded_at", "post_deletion")
    op.drop_table("post_deletion")
    op.drop_column("trend_bucket", "removed")
    op.drop_column("post_sentiment", "deleted_at")
