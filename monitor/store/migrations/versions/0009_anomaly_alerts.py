"""Anomaly alert rules, the "why" of a fired alert, and an outbox of deliveries.

`alert_rule` gains `metric` (volume | net_sentiment) and `baseline_weeks`, set on `anomaly` rules only (their
`threshold` is the z-score to reach). `alert_event.details` holds what an anomaly was measured against: z,
observed value, baseline (median, MAD, scale, samples, seasonal or not), keyphrases and example post ids (ids
only: the posts' text is read when listed, so a deleted or pruned post drops out of the why).

`alert_delivery` is one row per fired alert and channel (webhook, email): pending until delivered, so a failed
delivery is retried on the next pass without firing the alert again, and the rate limit counts what was sent.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-18
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('negative_share', 'volume_spike')"
KINDS = "kind IN ('negative_share', 'volume_spike', 'anomaly')"


def upgrade() -> None:
    op.add_column("alert_rule", sa.Column("metric", sa.String(32), nullable=True))
    op.add_column("alert_rule", sa.Column("baseline_weeks", sa.Integer(), nullable=True))
    op.drop_constraint("alert_rule_kind", "alert_rule", type_="check")
    op.create_check_constraint("alert_rule_kind", "alert_rule", KINDS)
    op.create_check_constraint(
        "alert_rule_anomaly", "alert_rule",
        "(kind = 'anomaly') = (metric IS NOT NULL AND baseline_weeks IS NOT NULL) "
        "AND (metric IS NULL OR metric IN ('volume', 'net_sentiment')) "
        "AND (baseline_weeks IS NULL OR baseline_weeks BETWEEN 1 AND 52)")
    op.add_column("alert_event", sa.Column("details", JSONB(), nullable=True,
                                           comment="anomaly alerts: z, observed, baseline, keyphrases, example "
                                                   "post ids"))

    op.create_table(
        "alert_delivery",
        sa.Column("event_id", sa.BigInteger(), sa.ForeignKey("alert_event.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("channel", sa.String(16), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.Text(), nullable=True),
        sa.CheckConstraint("channel IN ('webhook', 'email')", name="alert_delivery_channel"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'summarised', 'failed', 'expired')",
                           name="alert_delivery_status"),
        comment="One row per fired alert and delivery channel: pending until sent (alone, or in a rate-limit "
                "summary), failed after too many attempts, expired when it waited too long.",
    )
    op.create_index("ix_alert_delivery_pending", "alert_delivery", ["channel", "event_id"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.create_index("ix_alert_delivery_sent", "alert_delivery", ["channel", "delivered_at"])


def downgrade() -> None:
    op.drop_table("alert_delivery")
    op.drop_column("alert_event", "details")
    op.execute("DELETE FROM alert_rule WHERE kind = 'anomaly'")
    op.drop_constraint("alert_rule_anomaly", "alert_rule", type_="check")
    op.drop_constraint("alert_rule_kind", "alert_rule", type_="check")
    op.create_check_constraint("alert_rule_kind", "alert_rule", OLD_KINDS)
    op.drop_column("alert_rule", "baseline_weeks")
    op.drop_column("alert_rule", "metric")
