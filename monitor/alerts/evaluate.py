"""One evaluation pass over the enabled rules, reading trend buckets from PostgreSQL (the source of truth): the
default trend figures, posts in languages the model supports. Threshold rules read minute buckets; anomaly rules
also hour buckets and, when they fire, posts (monitor/alerts/anomaly.py).

A rule fires at most once per cooldown: the last firing is read in the same transaction that
inserts the new one, and the caller holds an advisory lock, so replicas never double-fire.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from monitor.alerts.anomaly import check_anomaly
from monitor.alerts.rules import AlertEvent, AlertKind, AlertRule
from monitor.alerts.tables import alert_delivery, alert_event, alert_rule
from monitor.store.db import trend_bucket


@dataclass(frozen=True)
class Totals:
    volume: int
    negative: int


async def window_totals(conn: AsyncConnection, brand: str, since: datetime, until: datetime) -> Totals:
    tb = trend_bucket.c
    query = select(func.coalesce(func.sum(tb.volume), 0), func.coalesce(func.sum(tb.negative), 0)).where(
        tb.language_supported, tb.brand == brand, tb.granularity == "minute", tb.bucket_start >= since,
        tb.bucket_start < until)
    volume, negative = (await conn.execute(query)).one()
    return Totals(int(volume), int(negative))


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


async def check_rule(conn: AsyncConnection, rule: AlertRule, now: datetime) -> dict | None:
    """The `alert_event` row this rule fires now, or None. The window ends with the current (partial) minute."""
    if rule.kind == AlertKind.ANOMALY:
        return await check_anomaly(conn, rule, now)
    until = _minute(now) + timedelta(minutes=1)
    since = until - timedelta(minutes=rule.window_minutes)
    window = await window_totals(conn, rule.brand, since, until)
    if window.volume < max(rule.min_volume, 1):
        return None
    if rule.kind == AlertKind.NEGATIVE_SHARE:
        value = window.negative / window.volume
        if value < rule.threshold:
            return None
        message = (f"{rule.brand}: {value:.0%} of {window.volume} posts negative in the last {rule.window_minutes} min "
                   f"(threshold {rule.threshold:.0%})")
    else:
        baseline = await window_totals(conn, rule.brand, since - timedelta(minutes=rule.baseline_minutes), since)
        per_window = baseline.volume * rule.window_minutes / rule.baseline_minutes
        value = window.volume / max(per_window, 1.0)  # an empty baseline counts as one post per window
        if value < rule.threshold:
            return None
        message = (f"{rule.brand}: volume spike, {window.volume} posts in the last {rule.window_minutes} min = "
                   f"{value:.1f}x the trailing {rule.baseline_minutes} min baseline (threshold {rule.threshold:g}x)")
    return {"rule_id": rule.id, "brand": rule.brand, "kind": rule.kind.value, "fired_at": now,
            "window_start": since, "window_end": until, "value": value, "threshold": rule.threshold,
            "volume": window.volume, "message": message}


async def _cooling_down(conn: AsyncConnection, rule: AlertRule, now: datetime) -> bool:
    if rule.cooldown_minutes == 0:
        return False
    last = (await conn.execute(select(func.max(alert_event.c.fired_at)).where(alert_event.c.rule_id == rule.id))
            ).scalar_one()
    return last is not None and last > now - timedelta(minutes=rule.cooldown_minutes)


async def evaluate_rules(conn: AsyncConnection, now: datetime, channels: tuple[str, ...] = ()) -> list[AlertEvent]:
    """Check every enabled rule; insert and return the alerts fired (inside the caller's transaction), each with a
    pending delivery per channel in `channels` (the outbox the delivery pass works through)."""
    rules = [AlertRule(**row) for row in
             (await conn.execute(select(alert_rule).where(alert_rule.c.enabled).order_by(alert_rule.c.id))).mappings()]
    fired: list[AlertEvent] = []
    for rule in rules:
        if await _cooling_down(conn, rule, now):
            continue
        row = await check_rule(conn, rule, now)
        if row is not None:
            stored = (await conn.execute(alert_event.insert().values(**row).returning(*alert_event.c))).mappings().one()
            if channels:
                await conn.execute(alert_delivery.insert().values([{"event_id": stored["id"], "channel": channel}
                                                                   for channel in channels]))
            fired.append(AlertEvent(**stored))
    return fired
