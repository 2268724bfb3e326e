"""Alert rules per brand and the alerts they fired (for the dashboard and webhooks).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_rule",
        sa.Column("id", sa.Integer(), sa.Identity(), primary_key=True),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("window_minutes", sa.Integer(), nullable=False, server_default="15"),
        sa.Column("baseline_minutes", sa.Integer(), nullable=False, server_default="120"),
        sa.Column("min_volume", sa.Integer(), nullable=False, server_default="10"),
        sa.Column("cooldown_minutes", sa.Integer(), nullable=False, server_default="15"),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("kind IN ('negative_share', 'volume_spike')", name="alert_rule_kind"),
        sa.CheckConstraint("window_minutes > 0 AND baseline_minutes > 0 AND min_volume >= 0 "
                           "AND cooldown_minutes >= 0", name="alert_rule_windows"),
        comment="Per-brand alert rules: negative share over a threshold within a window, or a volume spike "
                "(window volume over threshold x the trailing baseline's average per window).",
    )
    op.create_index("ix_alert_rule_brand", "alert_rule", ["brand"])

    op.create_table(
        "alert_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("rule_id", sa.Integer(), sa.ForeignKey("alert_rule.id", ondelete="SET NULL"), nullable=True),
        sa.Column("brand", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("volume", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        comment="Alerts fired by the evaluator (one row per firing; a rule stays quiet for its cooldown after).",
    )
    op.create_index("ix_alert_event_fired_at", "alert_event", ["fired_at"])
    op.create_index("ix_alert_event_rule_fired", "alert_event", ["rule_id", "fired_at"])


def downgrade() -> None:
    op.drop_table("alert_event")
    op.drop_table("alert_rule")
