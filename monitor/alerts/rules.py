"""Alert rules and fired alerts: validated models and their storage (the HTTP API's admin endpoints use these)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from core.logging import get_logger
from core.settings import LOOKBACK_DAYS, MAX_BASELINE_MINUTES, MAX_WINDOW_MINUTES  # noqa: F401 - part of the rules' API
from monitor.alerts.tables import alert_event, alert_rule
from monitor.store.brand_rules import brand_name, normalise_term
from monitor.store.text import stored_text

log = get_logger(__name__)

MAX_SPIKE_FACTOR = 1000.0
"""A volume spike rule's largest factor: beyond it a rule could never fire on any real baseline."""
MAX_MIN_VOLUME = 2**31 - 1
"""`min_volume` is an INTEGER column."""


class AlertKind(StrEnum):
    NEGATIVE_SHARE = "negative_share"
    """negative / volume over the last `window_minutes` reaches `threshold`, a share in (0, 1]."""
    VOLUME_SPIKE = "volume_spike"
    """volume over the last `window_minutes` reaches `threshold` x the trailing baseline's volume per window; a
    factor in (1, 1000] (at most 1 would fire on a flat or falling volume)."""


def check_threshold(kind: AlertKind, threshold: float) -> None:
    """ValueError naming the range when `threshold` does not suit `kind`."""
    if kind == AlertKind.NEGATIVE_SHARE and not 0 < threshold <= 1:
        raise ValueError(f"a negative_share threshold is a fraction in (0, 1], not {threshold}")
    if kind == AlertKind.VOLUME_SPIKE and not 1 < threshold <= MAX_SPIKE_FACTOR:
        raise ValueError(f"a volume_spike threshold is a factor in (1, {MAX_SPIKE_FACTOR:g}], not {threshold}")


class AlertRuleIn(BaseModel):
    """A rule as an admin writes it; defaults suit minute buckets and a dashboard refreshed every few seconds.
    Numbers and booleans are strict: `"3"` or `0` for `true` is a mistake to report, not to guess at."""

    brand: stored_text(min_length=1, max_length=64)
    kind: AlertKind
    threshold: float = Field(gt=0, le=MAX_SPIKE_FACTOR, allow_inf_nan=False, strict=True,
                             description="negative_share: a share in (0, 1]; volume_spike: a factor in (1, 1000], "
                                         "e.g. 3")
    window_minutes: int = Field(default=15, ge=1, le=MAX_WINDOW_MINUTES, strict=True)
    baseline_minutes: int = Field(default=120, ge=1, le=MAX_BASELINE_MINUTES, strict=True,
                                  description="volume_spike only: trailing period before the window")
    min_volume: int = Field(default=10, ge=0, le=MAX_MIN_VOLUME, strict=True,
                            description="no alert while the window holds fewer posts (at most 2^31-1)")
    cooldown_minutes: int = Field(default=15, ge=0, le=7 * 24 * 60, strict=True,
                                  description="quiet period after a firing")
    enabled: bool = Field(default=True, strict=True)

    @field_validator("brand")
    @classmethod
    def _brand(cls, value: str) -> str:
        return brand_name(value)

    @model_validator(mode="after")
    def _threshold_suits_kind(self) -> AlertRuleIn:
        check_threshold(self.kind, self.threshold)
        return self


class AlertRulePatch(BaseModel):
    """Fields an admin may change on an existing rule (brand and kind stay)."""

    threshold: float | None = Field(default=None, gt=0, le=MAX_SPIKE_FACTOR, allow_inf_nan=False, strict=True,
                                    description="within the rule's kind's range (see AlertRuleIn)")
    window_minutes: int | None = Field(default=None, ge=1, le=MAX_WINDOW_MINUTES, strict=True)
    baseline_minutes: int | None = Field(default=None, ge=1, le=MAX_BASELINE_MINUTES, strict=True)
    min_volume: int | None = Field(default=None, ge=0, le=MAX_MIN_VOLUME, strict=True)
    cooldown_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60, strict=True)
    enabled: bool | None = Field(default=None, strict=True)


class AlertRule(AlertRuleIn):
    """A stored rule. Read as stored: rules saved before today's limits still list, evaluate and can be patched."""

    threshold: float
    min_volume: int
    id: int
    created_at: datetime
    updated_at: datetime

    def _threshold_suits_kind(self) -> AlertRule:
        return self


class AlertEvent(BaseModel):
    id: int
    rule_id: int | None
    brand: str
    kind: AlertKind
    fired_at: datetime
    window_start: datetime
    window_end: datetime
    value: float
    threshold: float
    volume: int
    message: str


async def create_rule(engine: AsyncEngine, rule: AlertRuleIn) -> AlertRule:
    async with engine.begin() as conn:
        row = (await conn.execute(alert_rule.insert().values(**rule.model_dump(mode="json"))
                                  .returning(*alert_rule.c))).mappings().one()
    log.info("alert rule created", rule_id=row["id"], brand=rule.brand, kind=rule.kind.value)
    return AlertRule(**row)


async def list_rules(engine: AsyncEngine, brand: str | None = None, enabled_only: bool = False) -> list[AlertRule]:
    query = select(alert_rule).order_by(alert_rule.c.brand, alert_rule.c.id)
    if brand:
        query = query.where(alert_rule.c.brand == normalise_term(brand))
    if enabled_only:
        query = query.where(alert_rule.c.enabled)
    async with engine.connect() as conn:
        return [AlertRule(**row) for row in (await conn.execute(query)).mappings()]


async def get_rule(engine: AsyncEngine, rule_id: int) -> AlertRule | None:
    async with engine.connect() as conn:
        row = (await conn.execute(select(alert_rule).where(alert_rule.c.id == rule_id))).mappings().one_or_none()
    return AlertRule(**row) if row else None


async def update_rule(engine: AsyncEngine, rule_id: int, patch: AlertRulePatch) -> AlertRule | None:
    """Apply the fields set in `patch`; None when the rule does not exist. Re-validates the whole rule."""
    current = await get_rule(engine, rule_id)
    if current is None:
        return None
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    merged = AlertRuleIn(**{**current.model_dump(include=set(AlertRuleIn.model_fields)), **changes})
    values = merged.model_dump(mode="json", include=set(changes))
    async with engine.begin() as conn:
        row = (await conn.execute(update(alert_rule).where(alert_rule.c.id == rule_id)
                                  .values(**values, updated_at=func.now()).returning(*alert_rule.c))).mappings().one()
    log.info("alert rule updated", rule_id=rule_id, changes=sorted(changes))
    return AlertRule(**row)


async def delete_rule(engine: AsyncEngine, rule_id: int) -> bool:
    """Its fired alerts stay (rule_id becomes NULL): history is not rewritten."""
    async with engine.begin() as conn:
        removed = (await conn.execute(delete(alert_rule).where(alert_rule.c.id == rule_id))).rowcount > 0
    log.info("alert rule deleted" if removed else "alert rule not found", rule_id=rule_id)
    return removed


async def recent_events(engine: AsyncEngine, brand: str | None = None, limit: int = 50,
                        since: datetime | None = None) -> list[AlertEvent]:
    """Fired alerts, newest first."""
    query = select(alert_event).order_by(alert_event.c.fired_at.desc(), alert_event.c.id.desc()).limit(limit)
    if brand:
        query = query.where(alert_event.c.brand == normalise_term(brand))
    if since:
        query = query.where(alert_event.c.fired_at >= since)
    async with engine.connect() as conn:
        return [AlertEvent(**row) for row in (await conn.execute(query)).mappings()]
