"""Anomaly alerts on real PostgreSQL: hour buckets of generated history, posts in the window, the why, and delivery
to a real HTTP server (aiohttp) and a real SMTP server (aiosmtpd), with retries, dedupe and the rate limit.

Each test has a database of its own: evaluation reads every enabled rule, and the rate limit counts every message
a channel sent, so other tests' rules and alerts must not be there.
"""

from __future__ import annotations

import email
import email.policy
import socket
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from monitor.alerts.baseline import hour_of_week, hour_start
from monitor.alerts.delivery import EmailChannel, WebhookChannel, deliver_pending
from monitor.alerts.rules import AlertKind, AlertRuleIn, AnomalyMetric, create_rule, recent_events
from monitor.alerts.runner import alert_pass, evaluate_once
from monitor.alerts.tables import alert_delivery, alert_event
from monitor.store.db import create_engine, trend_bucket
from monitor.store.migrate import upgrade_head
from tests.integration.api_helpers import api_client, seed, unique_brand
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration

ADMIN = "anomaly-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
ORDINARY = ["love the new app update", "coffee order arrived on time", "friendly staff at the store",
            "price is fair for the service", "morning delivery was quick"]


@pytest.fixture
async def db(fresh_database):
    upgrade_head(fresh_database)
    engine = create_engine(fresh_database)
    yield SimpleNamespace(url=fresh_database, engine=engine)
    await engine.dispose()


def the_window(now: datetime) -> tuple[datetime, datetime]:
    """What an anomaly rule observes at `now`: the last 60 minutes, and the hour its middle falls in."""
    until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    return until - timedelta(minutes=60), hour_start(until - timedelta(minutes=30))


async def history(engine, brand: str, now: datetime, days: float,
                  counts: Callable[[datetime], tuple[int, int, int]]) -> None:
    """Hour buckets (negative, neutral, positive) for `days` before the window, as the sink would have left them."""
    since, _ = the_window(now)
    end = hour_start(since)
    rows, moment = [], end - timedelta(days=days)
    while moment < end:
        negative, neutral, positive = counts(moment)
        rows.append({"brand": brand, "granularity": "hour", "bucket_start": moment, "language": "en",
                     "language_supported": True, "model_version": "test", "negative": negative, "neutral": neutral,
                     "positive": positive,
                     "polarity_sum": 0.7 * (positive - negative)})
        moment += timedelta(hours=1)
    async with engine.begin() as conn:
        await conn.execute(trend_bucket.insert(), rows)


async def window_posts(engine, brand: str, now: datetime, labels: dict[str, int], text: str) -> list[str]:
    """Posts in the last ten minutes before `now`; returns their ids."""
    made, batch = [], uuid.uuid4().hex[:6]
    for label, count in labels.items():
        for i in range(count):
            made.append(result(f"{brand}-{batch}-{label}-{i}", [brand], now - timedelta(minutes=2 + i % 9, seconds=i),
                               label, text=f"{text} #{i}"))
    await seed(engine, made)
    return [r.post_id for r in made]


async def background_posts(engine, brand: str, now: datetime, n: int = 60) -> None:
    await seed(engine, [result(f"{brand}-b-{i}", [brand], now - timedelta(hours=3 + i), "neutral",
                               text=f"{ORDINARY[i % len(ORDINARY)]} {brand}") for i in range(n)])


def busy_at(reference: datetime, busy: int, usual: Callable[[datetime], int] = lambda h: 10 + h.hour % 3 - 1):
    """Neutral posts per hour: `busy` at the reference hour of the week, 9-11 otherwise."""
    return lambda h: (0, busy if hour_of_week(h) == hour_of_week(reference) else usual(h), 0)


async def anomaly_rule(engine, brand: str, metric: AnomalyMetric = AnomalyMetric.VOLUME, threshold: float = 4.0,
                       **extra):
    return await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.ANOMALY, threshold=threshold,
                                                 metric=metric, min_volume=5, **extra))


async def test_volume_spike_fires_with_its_why(db, settings):
    brand, now = unique_brand("anom"), datetime.now(UTC)
    _, reference = the_window(now)
    await history(db.engine, brand, now, 28, busy_at(reference, 40))
    await background_posts(db.engine, brand, now)
    rule = await anomaly_rule(db.engine, brand)
    usual = await window_posts(db.engine, brand, now, {"neutral": 30, "positive": 2}, "love the new app update")
    assert await evaluate_once(db.engine, now) == []  # 32 posts where this hour of the week usually has 40

    ids = await window_posts(db.engine, brand, now, {"negative": 70, "positive": 3},
                             "my battery fire scare, the charger melted")
    fired = await evaluate_once(db.engine, now + timedelta(seconds=5))
    assert [e.rule_id for e in fired] == [rule.id]
    event = fired[0]
    details = event.details
    assert event.kind == AlertKind.ANOMALY and event.volume == 105 and event.value == details.z
    assert details.observed == 105 and details.baseline.median == 40 and details.baseline.seasonal
    assert details.baseline.samples == 4 and details.baseline.hour_of_week == hour_of_week(reference)
    assert details.z == pytest.approx((105 - 40) / details.baseline.scale) and details.z >= 4
    assert details.keyphrases[:2] == ["battery fire", "charger melted"]
    assert not {"app", "update", "new app", "app update"} & set(details.keyphrases)  # as usual as before
    refs = {ref.post_id: ref.reason for ref in details.example_posts}
    assert list(refs.values()).count("most_negative") == 2 and set(refs) <= set(ids) | set(usual)
    assert f"{brand}: volume anomaly, 105 posts in the last hour" in event.message and "z = +" in event.message

    assert await evaluate_once(db.engine, now + timedelta(minutes=1)) == []  # persists: once per cooldown (60 min)
    async with api_client(settings, database_url=db.url) as client:
        listed = (await client.get("/api/alerts", params={"brand": brand})).json()
    assert len(listed) == 1 and listed[0]["details"]["z"] == pytest.approx(details.z)
    shown = listed[0]["examples"]
    assert [p["post_id"] for p in shown] == list(refs) and all(p["text_excerpt"] for p in shown)


async def test_flat_series_stays_quiet(db):
    brand, now = unique_brand("flat"), datetime.now(UTC)
    await history(db.engine, brand, now, 28, lambda h: (2, 6, 2))  # exactly 10 every hour: MAD 0
    await anomaly_rule(db.engine, brand, threshold=3)
    await anomaly_rule(db.engine, brand, AnomalyMetric.NET_SENTIMENT, threshold=3)
    await window_posts(db.engine, brand, now, {"negative": 3, "neutral": 7, "positive": 3}, "ordinary day")
    assert await evaluate_once(db.engine, now) == []  # 13 vs 10: z = 3 / sqrt(10) < 3, not "infinite"


async def test_net_sentiment_drop_with_short_history(db):
    """Two days of history: no earlier hour of the same weekday, so every past hour is the baseline."""
    brand, now = unique_brand("netsent"), datetime.now(UTC)
    await history(db.engine, brand, now, 2, lambda h: (1, 3, 6 + h.hour % 2))
    rule = await anomaly_rule(db.engine, brand, AnomalyMetric.NET_SENTIMENT, threshold=3)
    await window_posts(db.engine, brand, now, {"negative": 25, "neutral": 5}, "refund refused again")
    fired = await evaluate_once(db.engine, now)
    assert [e.rule_id for e in fired] == [rule.id]
    details = fired[0].details
    assert not details.baseline.seasonal and details.baseline.samples == 48
    assert details.observed == pytest.approx(-25 / 30) and details.z <= -3
    assert "net sentiment fell to -0.83 over 30 posts" in fired[0].message
    assert [ref.reason for ref in details.example_posts] == ["most_negative", "most_negative", "most_recent",
                                                             "most_recent"]  # no positive post in the window


async def test_under_a_day_of_history_no_anomaly(db):
    brand, now = unique_brand("young"), datetime.now(UTC)
    await history(db.engine, brand, now, 0.5, lambda h: (0, 1, 0))
    await anomaly_rule(db.engine, brand, threshold=1)
    await window_posts(db.engine, brand, now, {"negative": 80}, "launch day")
    assert await evaluate_once(db.engine, now) == []


async def test_threshold_rules_fire_beside_anomaly_rules(db):
    brand, now = unique_brand("mixed"), datetime.now(UTC)
    await history(db.engine, brand, now, 7, lambda h: (1, 8, 1))
    share = await create_rule(db.engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.5,
                                                     min_volume=5))
    anomaly = await anomaly_rule(db.engine, brand)
    await window_posts(db.engine, brand, now, {"negative": 40}, "outage")
    fired = {e.rule_id: e for e in await evaluate_once(db.engine, now)}
    assert set(fired) == {share.id, anomaly.id}
    assert fired[share.id].details is None and fired[share.id].value == 1.0
    assert "100% of 40 posts negative" in fired[share.id].message


# --- delivery -----------------------------------------------------------------------------------------------------

@pytest.fixture
async def hook():
    """A real HTTP receiver: records JSON bodies; answers 503 while `fail` > 0."""
    state = SimpleNamespace(received=[], fail=0)

    async def receive(request: web.Request) -> web.Response:
        if state.fail > 0:
            state.fail -= 1
            return web.Response(status=503)
        state.received.append(await request.json())
        return web.Response(status=200, text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    state.channel = WebhookChannel(f"http://127.0.0.1:{port}/hook", timeout_s=5.0)
    yield state
    await runner.cleanup()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, parsed))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    inbox.channel = EmailChannel("127.0.0.1", controller.port, "monitor@example.org",
                                 ("ops@example.org", "pr@example.org"), security="none", timeout_s=5.0)
    yield inbox
    controller.stop()


async def deliveries(engine) -> list[tuple]:
    d = alert_delivery.c
    async with engine.connect() as conn:
        return list(await conn.execute(select(d.event_id, d.channel, d.status, d.attempts).order_by(d.event_id,
                                                                                                     d.channel)))


async def test_anomaly_delivered_by_webhook_and_email_once(db, hook, smtp):
    brand, now = unique_brand("deliver"), datetime.now(UTC)
    _, reference = the_window(now)
    await history(db.engine, brand, now, 28, busy_at(reference, 12))
    await background_posts(db.engine, brand, now)
    await anomaly_rule(db.engine, brand)
    await window_posts(db.engine, brand, now, {"negative": 50}, "app <crash> & data loss")
    channels = [hook.channel, smtp.channel]

    fired = await alert_pass(db.engine, channels, max_per_hour=10, now=now)
    assert len(fired) == 1
    event = fired[0]
    body = hook.received[0]
    assert body["id"] == f"alert-{event.id}" and body["text"] == event.message and not body["summary"]
    assert body["alerts"][0]["details"]["z"] == pytest.approx(event.details.z)
    assert len(body["alerts"][0]["examples"]) >= 2
    blocks = str(body["blocks"])
    assert "app &lt;crash&gt; &amp; data loss" in blocks and event.details.keyphrases == ["app crash", "data loss"]

    sender, recipients, message = smtp.messages[0]
    assert sender == "monitor@example.org" and recipients == ["ops@example.org", "pr@example.org"]
    assert message["Subject"].startswith(f"[sentiment monitor] {brand}: volume anomaly (z = +")
    assert message["Message-ID"] == f"<alert-{event.id}@example.org>"
    plain, html = message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()
    assert "z-score: +" in plain and "Keyphrases: " in plain and "app <crash> & data loss" in plain
    assert "app &lt;crash&gt; &amp; data loss" in html

    await alert_pass(db.engine, channels, max_per_hour=10, now=now + timedelta(minutes=1))  # anomaly persists
    assert len(hook.received) == 1 and len(smtp.messages) == 1  # not fired again, not delivered again
    assert await deliveries(db.engine) == [(event.id, "email", "sent", 1), (event.id, "webhook", "sent", 1)]


async def test_failed_delivery_is_retried_without_a_second_alert(db, hook):
    brand, now = unique_brand("retry"), datetime.now(UTC)
    rule = await create_rule(db.engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.5,
                                                    min_volume=5, cooldown_minutes=0))
    await window_posts(db.engine, brand, now, {"negative": 10}, "down again")
    hook.fail = 1
    fired = await evaluate_once(db.engine, now, ["webhook"])
    report = await deliver_pending(db.engine, [hook.channel], now, max_per_hour=10)
    assert report.failed == 1 and hook.received == []
    assert await deliveries(db.engine) == [(fired[0].id, "webhook", "pending", 1)]

    await create_rule(db.engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.9,
                                             min_volume=5, enabled=False))  # the rule table changes, nothing fires
    report = await deliver_pending(db.engine, [hook.channel], now + timedelta(seconds=30), max_per_hour=10)
    assert report.sent == 1 and [b["alerts"][0]["rule_id"] for b in hook.received] == [rule.id]
    assert await deliveries(db.engine) == [(fired[0].id, "webhook", "sent", 2)]
    async with db.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(alert_event))).scalar_one() == 1


async def test_rate_limit_summarises_the_excess_then_waits(db, hook):
    brand, now = unique_brand("limit"), datetime.now(UTC)
    for threshold in (0.1, 0.2, 0.3, 0.4, 0.5):
        await create_rule(db.engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=threshold,
                                                 min_volume=5, window_minutes=60))
    await window_posts(db.engine, brand, now, {"negative": 10}, "storm " + uuid.uuid4().hex[:4])
    fired = await evaluate_once(db.engine, now, ["webhook"])
    assert len(fired) == 5

    report = await deliver_pending(db.engine, [hook.channel], now, max_per_hour=3)
    assert (report.sent, report.summarised) == (2, 3)
    singles, summary = hook.received[:2], hook.received[2]
    assert [b["alerts"][0]["id"] for b in singles] == [e.id for e in fired[:2]]
    assert summary["summary"] and [a["id"] for a in summary["alerts"]] == [e.id for e in fired[2:]]
    assert "3 alerts summarised (rate limit: 3 messages per hour)" in summary["text"]

    later = now + timedelta(minutes=20)  # the cooldown (15 min) is over: they fire again; the hour's budget is not
    again = await evaluate_once(db.engine, later, ["webhook"])
    assert len(again) == 5
    report = await deliver_pending(db.engine, [hook.channel], later, max_per_hour=3)
    assert report.waiting == 5 and len(hook.received) == 3
    report = await deliver_pending(db.engine, [hook.channel], now + timedelta(minutes=61), max_per_hour=3)
    assert (report.sent, report.summarised) == (2, 3) and len(hook.received) == 6
    statuses = [status for _id, _channel, status, _attempts in await deliveries(db.engine)]
    assert statuses.count("sent") == 4 and statuses.count("summarised") == 6


async def test_anomaly_rules_through_the_admin_api(db, settings):
    brand = unique_brand("anomapi")
    async with api_client(settings, database_url=db.url, api_admin_token=ADMIN) as client:
        created = await client.post("/api/alert-rules", headers=AUTH, json={
            "brand": brand, "kind": "anomaly", "metric": "net_sentiment", "threshold": 3.5})
        assert created.status_code == 201, created.text
        rule = created.json()
        assert (rule["metric"], rule["baseline_weeks"], rule["window_minutes"], rule["cooldown_minutes"]) == (
            "net_sentiment", 4, 60, 60)
        listed = (await client.get("/api/alert-rules", params={"brand": brand})).json()
        assert [(r["id"], r["kind"]) for r in listed] == [(rule["id"], "anomaly")]

        bad = [{"kind": "anomaly", "threshold": 3},
               {"kind": "anomaly", "metric": "volume", "threshold": 0.5},
               {"kind": "anomaly", "metric": "volume", "threshold": 3, "baseline_weeks": 0},
               {"kind": "anomaly", "metric": "volume", "threshold": 3, "baseline_weeks": 53},
               {"kind": "anomaly", "metric": "volume", "threshold": 3, "window_minutes": 5},
               {"kind": "anomaly", "metric": "volume", "threshold": 3, "baseline_weeks": "4"},
               {"kind": "anomaly", "metric": "sentiment", "threshold": 3},
               {"kind": "volume_spike", "metric": "volume", "threshold": 3}]
        for body in bad:
            response = await client.post("/api/alert-rules", headers=AUTH, json={"brand": brand, **body})
            assert response.status_code == 422, (body, response.text)
            assert isinstance(response.json()["detail"], list)

        patched = await client.patch(f"/api/alert-rules/{rule['id']}", headers=AUTH,
                                     json={"baseline_weeks": 8, "metric": "volume"})
        assert patched.status_code == 200 and patched.json()["baseline_weeks"] == 8
        too_low = await client.patch(f"/api/alert-rules/{rule['id']}", headers=AUTH, json={"threshold": 0.5})
        assert too_low.status_code == 422 and "z-score" in too_low.text
        events = await recent_events(db.engine, brand)
        assert events == []
