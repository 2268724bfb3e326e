"""Each post's detected language, and whether the model was evaluated on it.

Posts in languages the model does not support are stored (and shown) but not counted in trend buckets.
Rows written before this revision get NULL (unknown) and true (counted, as they were).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("post_sentiment", sa.Column("language", sa.String(2), nullable=True))
    op.add_column("post_sentiment", sa.Column("language_supported", sa.Boolean(), nullable=False,
                                              server_default=sa.true()))


def downgrade() -> None:
    op.drop_column("post_sentiment", "language_supported")
    op.drop_column("post_sentiment", "language")
