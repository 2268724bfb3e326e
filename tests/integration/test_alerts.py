"""Alert rules (CRUD through the API), evaluation on real trend buckets, cooldown, advisory lock, webhook."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import func, select

from monitor.alerts.rules import AlertKind, AlertRuleIn, create_rule, delete_rule
from monitor.alerts.runner import ALERT_LOCK_KEY, evaluate_once, post_webhook
from tests.integration.api_helpers import api_client, labelled, seed, unique_brand

pytestmark = pytest.mark.integration

ADMIN = "alert-admin"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def fired_for(events, rule_id: int) -> list:
    return [e for e in events or [] if e.rule_id == rule_id]


async def test_rule_crud_and_validation(settings, engine):
    brand = unique_brand("alerts")
    async with api_client(settings, api_admin_token=ADMIN) as client:
        created = await client.post("/api/alert-rules", headers=AUTH, json={
            "brand": brand.upper(), "kind": "negative_share", "threshold": 0.4, "window_minutes": 30})
        assert created.status_code == 201, created.text
        rule = created.json()
        assert rule["brand"] == brand and rule["min_volume"] == 10 and rule["enabled"] is True

        patched = await client.patch(f"/api/alert-rules/{rule['id']}", headers=AUTH,
                                     json={"threshold": 0.6, "enabled": False})
        assert patched.status_code == 200 and patched.json()["threshold"] == 0.6 and not patched.json()["enabled"]
        listed = (await client.get("/api/alert-rules", params={"brand": brand})).json()
        assert [r["id"] for r in listed] == [rule["id"]]

        bad = [{"brand": brand, "kind": "negative_share", "threshold": 1.5},
               {"brand": brand, "kind": "sentiment_flip", "threshold": 0.5},
               {"brand": brand, "kind": "volume_spike", "threshold": 0},
               {"brand": " ", "kind": "volume_spike", "threshold": 2},
               {"brand": brand, "kind": "volume_spike", "threshold": 2, "window_minutes": 0}]
        for body in bad:
            response = await client.post("/api/alert-rules", headers=AUTH, json=body)
            assert response.status_code == 422, body
        too_high = await client.patch(f"/api/alert-rules/{rule['id']}", headers=AUTH, json={"threshold": 3})
        assert too_high.status_code == 422 and "fraction" in too_high.text

        assert (await client.delete(f"/api/alert-rules/{rule['id']}", headers=AUTH)).status_code == 204
        assert (await client.delete(f"/api/alert-rules/{rule['id']}", headers=AUTH)).status_code == 404
        assert (await client.patch(f"/api/alert-rules/{rule['id']}", headers=AUTH, json={})).status_code == 404


async def test_negative_share_fires_once_per_cooldown(settings, engine):
    brand = unique_brand("negshare")
    await seed(engine, labelled(brand, {"negative": 8, "neutral": 1, "positive": 3}))
    rule = await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.5,
                                                 window_minutes=15, min_volume=5, cooldown_minutes=30))
    quiet = await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.9,
                                                  window_minutes=15, min_volume=5))
    try:
        first = fired_for(await evaluate_once(engine), rule.id)
        assert len(first) == 1
        event = first[0]
        assert event.value == pytest.approx(8 / 12) and event.volume == 12 and event.brand == brand
        assert "67% of 12 posts negative" in event.message
        assert fired_for(await evaluate_once(engine), rule.id) == []  # cooling down
        assert fired_for(await evaluate_once(engine), quiet.id) == []  # below its threshold
        later = datetime.now(UTC) + timedelta(minutes=31)  # after the cooldown, but the posts left the window
        assert fired_for(await evaluate_once(engine, now=later), rule.id) == []

        async with api_client(settings) as client:
            shown = (await client.get("/api/alerts", params={"brand": brand})).json()
            fired_at = datetime.fromisoformat(shown[0]["fired_at"])
            windows = [{"until": fired_at.isoformat()}, {"since": fired_at.isoformat(),
                                                          "until": (fired_at + timedelta(seconds=1)).isoformat()}]
            in_windows = [len((await client.get("/api/alerts", params={"brand": brand, **w})).json())
                          for w in windows]
        assert [(a["rule_id"], a["kind"]) for a in shown] == [(rule.id, "negative_share")]
        assert in_windows == [0, 1]  # `until` is exclusive, `since` inclusive
    finally:
        await delete_rule(engine, rule.id)
        await delete_rule(engine, quiet.id)


async def test_volume_spike_against_the_trailing_baseline(settings, engine):
    brand = unique_brand("spike")
    await seed(engine, labelled(brand, {"neutral": 4}, minutes_ago=50))  # baseline: 4 posts in the prior hour
    rule = await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.VOLUME_SPIKE, threshold=3,
                                                 window_minutes=10, baseline_minutes=60, min_volume=5))
    try:
        assert fired_for(await evaluate_once(engine), rule.id) == []  # nothing in the window yet
        await seed(engine, labelled(brand, {"positive": 6, "negative": 2}, minutes_ago=1))
        fired = fired_for(await evaluate_once(engine), rule.id)
        assert len(fired) == 1
        assert fired[0].value == pytest.approx(8.0)  # 4 posts/60 min = 0.67 per 10 min, floored at 1 post
        assert "volume spike, 8 posts" in fired[0].message
    finally:
        await delete_rule(engine, rule.id)


async def test_advisory_lock_lets_one_replica_evaluate(engine):
    brand = unique_brand("locked")
    await seed(engine, labelled(brand, {"negative": 12}))
    rule = await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.5))
    try:
        async with engine.connect() as other_replica:
            await other_replica.execute(select(func.pg_advisory_lock(ALERT_LOCK_KEY)))
            assert await evaluate_once(engine) is None  # skipped, nothing fired twice
            await other_replica.execute(select(func.pg_advisory_unlock(ALERT_LOCK_KEY)))
        assert len(fired_for(await evaluate_once(engine), rule.id)) == 1
    finally:
        await delete_rule(engine, rule.id)


class _Receiver(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook_receiver():
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


async def test_webhook_delivery_and_failures_are_logged_not_raised(engine, webhook_receiver):
    url, received = webhook_receiver
    brand = unique_brand("hook")
    await seed(engine, labelled(brand, {"negative": 11}))
    rule = await create_rule(engine, AlertRuleIn(brand=brand, kind=AlertKind.NEGATIVE_SHARE, threshold=0.5))
    try:
        fired = fired_for(await evaluate_once(engine), rule.id)
        assert await post_webhook(url, fired) is True
        assert received[0]["alerts"][0]["brand"] == brand and received[0]["alerts"][0]["rule_id"] == rule.id
        assert await post_webhook("http://127.0.0.1:1/hook", fired, timeout_s=1.0) is False
    finally:
        await delete_rule(engine, rule.id)
