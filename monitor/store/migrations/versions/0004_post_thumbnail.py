"""Thumbnails of posts' images (inline or fetched by the worker), for the dashboard's recent posts.

A table of their own keeps `post_sentiment` narrow for analysts' scans and `SELECT *`; a post's thumbnail goes
with the post (ON DELETE CASCADE), and `DELETE FROM post_thumbnail WHERE ...` frees the space on its own.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "post_thumbnail",
        sa.Column("post_id", sa.String(128), sa.ForeignKey("post_sentiment.post_id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("jpeg", sa.LargeBinary(), nullable=False),
        comment="A small JPEG of a post's image (WORKER_THUMBNAIL_PX on its longer side).",
    )


def downgrade() -> None:
    op.drop_table("post_thumbnail")
