"""The alert tables as SQLAlchemy Core objects; the schema itself is migrations 0002's and 0009's."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

alert_rule = Table(
    "alert_rule",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("brand", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("threshold", Float, nullable=False),
    Column("window_minutes", Integer, nullable=False),
    Column("baseline_minutes", Integer, nullable=False),
    Column("min_volume", Integer, nullable=False),
    Column("cooldown_minutes", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("metric", String(32), nullable=True),
    Column("baseline_weeks", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

alert_event = Table(
    "alert_event",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("rule_id", Integer, nullable=True),
    Column("brand", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("window_end", DateTime(timezone=True), nullable=False),
    Column("value", Float, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("volume", Integer, nullable=False),
    Column("message", Text, nullable=False),
    Column("details", JSONB, nullable=True),
)

alert_delivery = Table(
    "alert_delivery",
    metadata,
    Column("event_id", BigInteger, ForeignKey("alert_event.id", ondelete="CASCADE"), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    Column("message_id", Text, nullable=True),
)
