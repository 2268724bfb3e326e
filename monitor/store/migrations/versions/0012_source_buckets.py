"""Posts per brand, hour or day and source, kept by the keyphrase pass beside the keyphrase counts.

The sources a brand's posts came from, over any window, without grouping the per-post rows (which grow with the
stream): `keyphrase_post` gains the post's `source`, so a deletion takes the post out of `source_bucket` too, and
existing counted posts are counted in.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

BACKFILL = """
INSERT INTO source_bucket (brand, granularity, bucket_start, source, posts)
SELECT b.brand, g.granularity, date_trunc(g.granularity, k.created_at, 'UTC'), k.source, count(*)
  FROM keyphrase_post AS k CROSS JOIN unnest(k.brands) AS b(brand)
 CROSS JOIN (VALUES ('hour'), ('day')) AS g(granularity)
 WHERE char_length(b.brand) <= 64
 GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    op.add_column("keyphrase_post", sa.Column("source", sa.String(64), nullable=False, server_default="unknown"))
    op.execute("UPDATE keyphrase_post AS k SET source = coalesce(p.source, 'unknown') FROM post_sentiment AS p "
               "WHERE p.post_id = k.post_id")
    op.alter_column("keyphrase_post", "source", server_default=None)
    op.create_table(
        "source_bucket",
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("granularity", sa.String(8), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("posts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("brand", "granularity", "bucket_start", "source"),
        sa.CheckConstraint("granularity IN ('hour', 'day')", name="source_bucket_granularity"),
        comment="Posts per brand, UTC hour or day and source ('unknown': stored before posts had one).",
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("source_bucket")
    op.drop_column("keyphrase_post", "source")
