"""Alert rules and fired alerts: validated models and their storage (the HTTP API's admin endpoints use these)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.logging import get_logger
from core.settings import LOOKBACK_DAYS, MAX_BASELINE_MINUTES, MAX_WINDOW_MINUTES  # noqa: F401 - part of the rules' API
from monitor.alerts.tables import alert_event, alert_rule
from monitor.store.brand_rules import brand_name, normalise_term
from monitor.store.db import post_sentiment
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
    ANOMALY = "anomaly"
    """`metric` over the last hour is `threshold` robust z-scores from its baseline (the same hour of the week over
    `baseline_weeks` weeks, see monitor/alerts/baseline.py); a z in [1, 100]."""


class AnomalyMetric(StrEnum):
    VOLUME = "volume"
    """Posts in the last hour; fires on rises only."""
    NET_SENTIMENT = "net_sentiment"
    """(positive - negative) / volume over the last hour; fires on a swing either way."""


MIN_Z, MAX_Z = 1.0, 100.0
MAX_BASELINE_WEEKS = 12
"""Hour buckets are never pruned; 12 weeks of hourly sums per rule and pass is still a small read."""
ANOMALY_WINDOW_MINUTES = 60
"""An anomaly rule observes the last hour: the same length as the hour buckets its baseline is made of, so the
z-score compares like with like."""
ANOMALY_DEFAULTS = {"window_minutes": ANOMALY_WINDOW_MINUTES, "cooldown_minutes": 60, "baseline_weeks": 4}


def check_threshold(kind: AlertKind, threshold: float) -> None:
    """ValueError naming the range when `threshold` does not suit `kind`."""
    if kind == AlertKind.NEGATIVE_SHARE and not 0 < threshold <= 1:
        raise ValueError(f"a negative_share threshold is a fraction in (0, 1], not {threshold}")
    if kind == AlertKind.VOLUME_SPIKE and not 1 < threshold <= MAX_SPIKE_FACTOR:
        raise ValueError(f"a volume_spike threshold is a factor in (1, {MAX_SPIKE_FACTOR:g}], not {threshold}")
    if kind == AlertKind.ANOMALY and not MIN_Z <= threshold <= MAX_Z:
        raise ValueError(f"an anomaly threshold is a z-score in [{MIN_Z:g}, {MAX_Z:g}], not {threshold}")


def check_anomaly_params(kind: AlertKind, metric: AnomalyMetric | None, baseline_weeks: int | None,
                         window_minutes: int) -> None:
    """ValueError when the anomaly-only parameters are missing from an anomaly rule or set on another kind."""
    if kind == AlertKind.ANOMALY:
        if metric is None:
            raise ValueError("an anomaly rule needs a metric: volume or net_sentiment")
        if window_minutes != ANOMALY_WINDOW_MINUTES:
            raise ValueError(f"an anomaly rule observes the last {ANOMALY_WINDOW_MINUTES} minutes "
                             f"(window_minutes {ANOMALY_WINDOW_MINUTES}), not {window_minutes}")
    elif metric is not None or baseline_weeks is not None:
        raise ValueError("metric and baseline_weeks apply to anomaly rules only")


class AlertRuleIn(BaseModel):
    """A rule as an admin writes it; defaults suit minute buckets and a dashboard refreshed every few seconds.
    Numbers and booleans are strict: `"3"` or `0` for `true` is a mistake to report, not to guess at."""

    brand: stored_text(min_length=1, max_length=64)
    kind: AlertKind
    threshold: float = Field(gt=0, le=MAX_SPIKE_FACTOR, allow_inf_nan=False, strict=True,
                             description="negative_share: a share in (0, 1]; volume_spike: a factor in (1, 1000], "
                                         "e.g. 3; anomaly: a robust z-score in [1, 100], e.g. 3.5")
    window_minutes: int = Field(default=15, ge=1, le=MAX_WINDOW_MINUTES, strict=True,
                                description="anomaly rules: 60 (their default), the length of an hour bucket")
    baseline_minutes: int = Field(default=120, ge=1, le=MAX_BASELINE_MINUTES, strict=True,
                                  description="volume_spike only: trailing period before the window")
    min_volume: int = Field(default=10, ge=0, le=MAX_MIN_VOLUME, strict=True,
                            description="no alert while the window holds fewer posts (at most 2^31-1)")
    cooldown_minutes: int = Field(default=15, ge=0, le=7 * 24 * 60, strict=True,
                                  description="quiet period after a firing (anomaly rules: 60 by default), so a "
                                              "lasting anomaly alerts once per cooldown")
    enabled: bool = Field(default=True, strict=True)
    metric: AnomalyMetric | None = Field(default=None, description="anomaly rules only (required there)")
    baseline_weeks: int | None = Field(default=None, ge=1, le=MAX_BASELINE_WEEKS, strict=True,
                                       description="anomaly rules only: weeks of hour buckets in the baseline "
                                                   "(default 4; 3 or more for an hour-of-week baseline)")

    @model_validator(mode="before")
    @classmethod
    def _anomaly_defaults(cls, data: Any) -> Any:
        """Defaults that suit an hourly anomaly rule rather than a minute-window threshold rule."""
        if isinstance(data, dict) and data.get("kind") == AlertKind.ANOMALY.value:
            data = {**ANOMALY_DEFAULTS, **data}
        return data

    @field_validator("brand")
    @classmethod
    def _brand(cls, value: str) -> str:
        return brand_name(value)

    @model_validator(mode="after")
    def _threshold_suits_kind(self) -> AlertRuleIn:
        check_threshold(self.kind, self.threshold)
        check_anomaly_params(self.kind, self.metric, self.baseline_weeks, self.window_minutes)
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
    metric: AnomalyMetric | None = Field(default=None, description="anomaly rules only")
    baseline_weeks: int | None = Field(default=None, ge=1, le=MAX_BASELINE_WEEKS, strict=True,
                                       description="anomaly rules only")


class AlertRule(AlertRuleIn):
    """A stored rule. Read as stored: rules saved before today's limits still list, evaluate and can be patched."""

    threshold: float
    min_volume: int
    id: int
    created_at: datetime
    updated_at: datetime

    def _threshold_suits_kind(self) -> AlertRule:
        return self


class BaselineInfo(BaseModel):
    """What an anomaly was measured against (see monitor/alerts/baseline.py)."""

    median: float
    mad: float = Field(description="median absolute deviation of the samples")
    scale: float = Field(description="the standard deviation z divides by: 1.4826 x MAD, or the mean absolute "
                                     "deviation x 1.2533 when the MAD is 0, and never below counting noise")
    scale_from: Literal["mad", "mean_abs_dev", "noise_floor"]
    samples: int = Field(description="hourly values in the baseline")
    seasonal: bool = Field(description="true: the same hour of the week in past weeks; false: every past hour "
                                       "(history too short for an hour-of-week baseline)")
    hour_of_week: int = Field(ge=0, lt=168, description="0 = Monday 00:00 UTC")


class ExampleRef(BaseModel):
    post_id: str
    reason: Literal["most_negative", "most_positive", "most_recent"]


class AnomalyDetails(BaseModel):
    """The "why" of an anomaly alert, as stored with it (post ids only: their text is read when listed)."""

    metric: AnomalyMetric
    z: float
    observed: float = Field(description="the metric over the window: posts, or net sentiment in [-1, 1]")
    baseline: BaselineInfo
    keyphrases: list[str] = Field(default_factory=list,
                                  description="terms distinctive of the window's posts against the baseline's")
    example_posts: list[ExampleRef] = Field(default_factory=list)


class ExamplePost(BaseModel):
    """An example post behind an anomaly, still stored and not deleted."""

    post_id: str
    reason: Literal["most_negative", "most_positive", "most_recent"]
    label: str
    polarity: float
    created_at: datetime
    text_excerpt: str


class AlertEvent(BaseModel):
    id: int
    rule_id: int | None
    brand: str
    kind: AlertKind
    fired_at: datetime
    window_start: datetime
    window_end: datetime
    value: float = Field(description="what met the threshold: a share, a factor, or (anomaly) the z-score")
    threshold: float
    volume: int
    message: str
    details: AnomalyDetails | None = Field(default=None, description="anomaly alerts: z, baseline, keyphrases")
    examples: list[ExamplePost] = Field(default_factory=list,
                                        description="anomaly alerts: the example posts behind it that are still "
                                                    "stored (deleted or pruned ones drop out)")


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
                        since: datetime | None = None, until: datetime | None = None) -> list[AlertEvent]:
    """Fired alerts in [since, until), newest first, anomalies with their example posts."""
    query = select(alert_event).order_by(alert_event.c.fired_at.desc(), alert_event.c.id.desc()).limit(limit)
    if brand:
        query = query.where(alert_event.c.brand == normalise_term(brand))
    if since:
        query = query.where(alert_event.c.fired_at >= since)
    if until:
        query = query.where(alert_event.c.fired_at < until)
    async with engine.connect() as conn:
        events = [AlertEvent(**row) for row in (await conn.execute(query)).mappings()]
        return await with_examples(conn, events)


async def with_examples(conn: AsyncConnection, events: list[AlertEvent]) -> list[AlertEvent]:
    """`events` with `examples` filled from `post_sentiment`: one query by primary key for all of them."""
    refs = {ref.post_id: ref.reason for e in events if e.details for ref in e.details.example_posts}
    if not refs:
        return events
    ps = post_sentiment.c
    rows = (await conn.execute(
        select(ps.post_id, ps.label, ps.polarity, ps.created_at, ps.text_excerpt)
        .where(ps.post_id.in_(list(refs)), ps.deleted_at.is_(None)))).mappings()
    posts = {row["post_id"]: row for row in rows}
    return [event.model_copy(update={"examples": [
        ExamplePost(**posts[ref.post_id], reason=ref.reason)
        for ref in event.details.example_posts if ref.post_id in posts]}) if event.details else event
        for event in events]
