"""The periodic alert loop: one replica at a time evaluates (PostgreSQL advisory lock), then deliveries go out.

It runs inside every `monitor api` process; `pg_try_advisory_xact_lock` lets exactly one
replica evaluate a given pass, and the cooldown check in that same transaction means a
replica that evaluates just after sees the firing and stays quiet. Delivery works through the
outbox the evaluation filled (monitor/alerts/delivery.py), under a lock of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.logging import get_logger
from core.settings import AlertSettings
from monitor.alerts.delivery import (
    WEBHOOK_TIMEOUT_S,
    Channel,
    DeliveryError,
    WebhookChannel,
    channels_from_settings,
    deliver_pending,
)
from monitor.alerts.evaluate import evaluate_rules
from monitor.alerts.rules import AlertEvent

log = get_logger(__name__)

ALERT_LOCK_KEY = 0x5E_A1_E7  # any constant, distinct from the migration lock


async def evaluate_once(engine: AsyncEngine, now: datetime | None = None,
                        channels: Sequence[str] = ()) -> list[AlertEvent] | None:
    """Evaluate all rules if no other replica is doing so; None when the lock was busy. Each alert fired gets a
    pending delivery per channel name in `channels`."""
    now = now or datetime.now(UTC)
    async with engine.begin() as conn:
        if not (await conn.execute(select(func.pg_try_advisory_xact_lock(ALERT_LOCK_KEY)))).scalar_one():
            log.debug("alert evaluation skipped: another replica holds the lock")
            return None
        fired = await evaluate_rules(conn, now, tuple(channels))
    for event in fired:
        log.warning("alert fired", rule_id=event.rule_id, brand=event.brand, kind=event.kind.value,
                    value=round(event.value, 4), message=event.message)
    return fired


async def post_webhook(url: str, events: list[AlertEvent], timeout_s: float = WEBHOOK_TIMEOUT_S) -> bool:
    """POST these alerts in one message at once, outside the outbox (no retry); failures are logged, never
    raised."""
    if not events:
        return True
    try:
        await WebhookChannel(url, timeout_s).send(events)
    except DeliveryError as exc:
        log.error("alert webhook failed", url=url, error=str(exc), alerts=len(events))
        return False
    log.info("alert webhook delivered", url=url, alerts=len(events))
    return True


async def alert_pass(engine: AsyncEngine, channels: Sequence[Channel], max_per_hour: int,
                     now: datetime | None = None) -> list[AlertEvent] | None:
    """One evaluation, then one delivery pass (new alerts and earlier ones still pending)."""
    now = now or datetime.now(UTC)
    fired = await evaluate_once(engine, now, [channel.name for channel in channels])
    await deliver_pending(engine, channels, now, max_per_hour)
    return fired


async def run_alert_loop(engine: AsyncEngine, alerts: AlertSettings) -> None:
    """Evaluate and deliver every `interval_s` until cancelled; a failing pass (database down) is logged and
    retried."""
    channels = channels_from_settings(alerts)
    log.info("alert loop started", interval_s=alerts.interval_s, channels=[c.name for c in channels],
             max_messages_per_hour=alerts.max_messages_per_hour)
    while True:
        try:
            await alert_pass(engine, channels, alerts.max_messages_per_hour)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a database outage
            log.error("alert evaluation failed", error=str(exc))
        await asyncio.sleep(alerts.interval_s)
