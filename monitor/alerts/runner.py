"""The periodic alert loop: one replica at a time evaluates (PostgreSQL advisory lock), then webhooks fire.

It runs inside every `monitor api` process; `pg_try_advisory_xact_lock` lets exactly one
replica evaluate a given pass, and the cooldown check in that same transaction means a
replica that evaluates just after sees the firing and stays quiet.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from core.logging import get_logger
from monitor.alerts.evaluate import evaluate_rules
from monitor.alerts.rules import AlertEvent

log = get_logger(__name__)

ALERT_LOCK_KEY = 0x5E_A1_E7  # any constant, distinct from the migration lock
WEBHOOK_TIMEOUT_S = 5.0


async def evaluate_once(engine: AsyncEngine, now: datetime | None = None) -> list[AlertEvent] | None:
    """Evaluate all rules if no other replica is doing so; None when the lock was busy."""
    now = now or datetime.now(UTC)
    async with engine.begin() as conn:
        if not (await conn.execute(select(func.pg_try_advisory_xact_lock(ALERT_LOCK_KEY)))).scalar_one():
            log.debug("alert evaluation skipped: another replica holds the lock")
            return None
        fired = await evaluate_rules(conn, now)
    for event in fired:
        log.warning("alert fired", rule_id=event.rule_id, brand=event.brand, kind=event.kind.value,
                    value=round(event.value, 4), message=event.message)
    return fired


async def post_webhook(url: str, events: list[AlertEvent], timeout_s: float = WEBHOOK_TIMEOUT_S) -> bool:
    """POST `{"alerts": [...]}`; failures are logged, never raised (the alert is stored either way)."""
    if not events:
        return True
    body = {"alerts": [event.model_dump(mode="json") for event in events]}
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(url, json=body)
            response.raise_for_status()
    except httpx.HTTPError as exc:
        log.error("alert webhook failed", url=url, error=str(exc) or type(exc).__name__, alerts=len(events))
        return False
    log.info("alert webhook delivered", url=url, alerts=len(events))
    return True


async def run_alert_loop(engine: AsyncEngine, interval_s: float, webhook_url: str | None = None) -> None:
    """Evaluate every `interval_s` until cancelled; a failing pass (database down) is logged and retried."""
    log.info("alert loop started", interval_s=interval_s, webhook=bool(webhook_url))
    while True:
        try:
            fired = await evaluate_once(engine)
            if fired and webhook_url:
                await post_webhook(webhook_url, fired)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the loop must outlive a database outage
            log.error("alert evaluation failed", error=str(exc))
        await asyncio.sleep(interval_s)
