"""Delivering fired alerts: webhook and email channels, an outbox in PostgreSQL, and a rate limit per channel.

Each fired alert gets a pending `alert_delivery` row per configured channel in the transaction that stores it, so
delivery is retried on every pass until it succeeds (or fails `MAX_ATTEMPTS` times, or waits `MAX_PENDING` long)
without the alert being fired or stored again. Each message is committed as sent right after it went out: a crash
in between can only resend that one message, and its stable id (`messages.message_key`) lets a receiver drop it.

Rate limit: a channel sends at most `max_per_hour` messages in any rolling hour. When more alerts wait than the
budget allows, each gets its own message but the last, which summarises the rest; with no budget left they wait.
One replica delivers at a time (session advisory lock), like evaluation.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core.logging import get_logger
from core.settings import AlertSettings
from monitor.alerts.messages import email_message, message_key, webhook_body
from monitor.alerts.rules import AlertEvent, with_examples
from monitor.alerts.tables import alert_delivery, alert_event

log = get_logger(__name__)

DELIVERY_LOCK_KEY = 0x5E_A1_E8
WEBHOOK_TIMEOUT_S = 5.0
MAX_ATTEMPTS = 20
"""About ten minutes of failing passes at the default 30 s interval, then the delivery is given up (and logged)."""
MAX_PENDING = timedelta(hours=6)
"""An alert still undelivered after this (a long outage, or the rate limit) is dropped: it is stale news by then,
and stays listed in the API and dashboard."""
MAX_PER_PASS = 500


class DeliveryError(Exception):
    """A channel could not deliver a message; the text says why (no secrets)."""


class Channel(Protocol):
    name: Literal["webhook", "email"]

    async def send(self, events: list[AlertEvent], summary: bool, limit_note: str) -> None: ...


@dataclass(frozen=True)
class WebhookChannel:
    """POSTs JSON to a URL: a Slack incoming webhook shows `text` and `blocks`; other receivers read `alerts`."""

    url: str
    timeout_s: float = WEBHOOK_TIMEOUT_S
    name: Literal["webhook", "email"] = "webhook"

    async def send(self, events: list[AlertEvent], summary: bool = False, limit_note: str = "") -> None:
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self.url, json=webhook_body(events, summary, limit_note))
                response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DeliveryError(str(exc) or type(exc).__name__) from None


@dataclass(frozen=True)
class EmailChannel:
    """Sends through an SMTP server with the standard library's client, on a thread (it blocks)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    security: Literal["starttls", "tls", "none"] = "starttls"
    user: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    name: Literal["webhook", "email"] = "email"

    async def send(self, events: list[AlertEvent], summary: bool = False, limit_note: str = "") -> None:
        message = email_message(events, self.sender, list(self.recipients), summary, limit_note)
        try:
            await asyncio.to_thread(self._send, message)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from None

    def _send(self, message) -> None:
        context = ssl.create_default_context()
        if self.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with client as smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(message, self.sender, list(self.recipients))


def channels_from_settings(alerts: AlertSettings) -> list[Channel]:
    channels: list[Channel] = []
    if alerts.webhook_url:
        channels.append(WebhookChannel(alerts.webhook_url))
    if alerts.smtp_host and alerts.smtp_from:
        channels.append(EmailChannel(alerts.smtp_host, alerts.smtp_port, alerts.smtp_from,
                                     tuple(alerts.recipients()), alerts.smtp_security, alerts.smtp_user,
                                     alerts.smtp_password, alerts.smtp_timeout_s))
    return channels


@dataclass
class PassReport:
    sent: int = 0
    summarised: int = 0
    failed: int = 0
    waiting: int = 0


async def _pending(conn: AsyncConnection, channel: str) -> list[AlertEvent]:
    d = alert_delivery.c
    rows = (await conn.execute(
        select(alert_event).join(alert_delivery, d.event_id == alert_event.c.id)
        .where(d.channel == channel, d.status == "pending")
        .order_by(alert_event.c.fired_at, alert_event.c.id).limit(MAX_PER_PASS))).mappings()
    return await with_examples(conn, [AlertEvent(**row) for row in rows])


async def _sent_last_hour(conn: AsyncConnection, channel: str, now: datetime) -> int:
    d = alert_delivery.c
    return (await conn.execute(select(func.count(func.distinct(d.message_id))).where(
        d.channel == channel, d.delivered_at > now - timedelta(hours=1)))).scalar_one()


async def _mark(conn: AsyncConnection, channel: str, events: Sequence[AlertEvent], **values) -> None:
    d = alert_delivery.c
    await conn.execute(update(alert_delivery).where(d.channel == channel, d.event_id.in_([e.id for e in events]))
                       .values(**values))
    await conn.commit()


async def _deliver_channel(conn: AsyncConnection, channel: Channel, now: datetime, max_per_hour: int,
                           report: PassReport) -> None:
    d = alert_delivery.c
    expired = await conn.execute(
        update(alert_delivery).where(d.channel == channel.name, d.status == "pending",
                                     d.event_id == alert_event.c.id, alert_event.c.fired_at < now - MAX_PENDING)
        .values(status="expired").returning(d.event_id))
    if dropped := [row[0] for row in expired]:
        log.error("alert deliveries expired undelivered", channel=channel.name, alerts=dropped)
    await conn.commit()
    pending = await _pending(conn, channel.name)
    if not pending:
        return
    budget = max_per_hour - await _sent_last_hour(conn, channel.name, now)
    if budget <= 0:
        report.waiting += len(pending)
        log.warning("alert delivery rate-limited", channel=channel.name, waiting=len(pending),
                    max_per_hour=max_per_hour)
        return
    singles, rest = (pending, []) if len(pending) <= budget else (pending[:budget - 1], pending[budget - 1:])
    note = f"rate limit: {max_per_hour} messages per hour"
    messages = [([event], False) for event in singles] + ([(rest, True)] if rest else [])
    for events, summary in messages:
        key = message_key(events, summary)
        try:
            await channel.send(events, summary, note)
        except DeliveryError as exc:
            await _record_failure(conn, channel.name, events, str(exc), now)
            report.failed += len(events)
            return  # the receiver is likely down: the rest waits for the next pass
        await _mark(conn, channel.name, events, status="summarised" if summary else "sent", delivered_at=now,
                    last_attempt_at=now, attempts=d.attempts + 1, message_id=key, last_error=None)
        if summary:
            report.summarised += len(events)
        else:
            report.sent += 1
        log.info("alert delivered", channel=channel.name, message=key, alerts=len(events), summary=summary)


async def _record_failure(conn: AsyncConnection, channel: str, events: list[AlertEvent], error: str,
                          now: datetime) -> None:
    d = alert_delivery.c
    ids = [e.id for e in events]
    await conn.execute(update(alert_delivery).where(d.channel == channel, d.event_id.in_(ids))
                       .values(attempts=d.attempts + 1, last_error=error[:1000], last_attempt_at=now))
    failed = [row[0] for row in await conn.execute(
        update(alert_delivery).where(d.channel == channel, d.event_id.in_(ids), d.attempts >= MAX_ATTEMPTS)
        .values(status="failed").returning(d.event_id))]
    await conn.commit()
    log.error("alert delivery failed; retried next pass" if not failed else "alert delivery given up",
              channel=channel, alerts=ids, error=error, attempts_max=MAX_ATTEMPTS)


async def deliver_pending(engine: AsyncEngine, channels: Sequence[Channel], now: datetime,
                          max_per_hour: int) -> PassReport | None:
    """Work through every channel's pending deliveries; None when another replica holds the delivery lock."""
    report = PassReport()
    if not channels:
        return report
    async with engine.connect() as conn:
        if not (await conn.execute(select(func.pg_try_advisory_lock(DELIVERY_LOCK_KEY)))).scalar_one():
            await conn.rollback()
            return None
        await conn.commit()
        try:
            for channel in channels:
                await _deliver_channel(conn, channel, now, max_per_hour, report)
        finally:
            await conn.rollback()
            await conn.execute(select(func.pg_advisory_unlock(DELIVERY_LOCK_KEY)))
            await conn.commit()
    return report
