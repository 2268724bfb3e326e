"""The why of an anomaly alert without a database: keyphrases, example choice, rule validation, and the webhook and
email renderings."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from monitor.alerts.anomaly import pick_examples
from monitor.alerts.keyphrases import distinctive_terms
from monitor.alerts.messages import email_message, message_key, webhook_body
from monitor.alerts.rules import AlertEvent, AlertKind, AlertRuleIn, AnomalyMetric

ORDINARY = ["great", "coffee", "morning", "service", "store", "app", "update", "price", "love", "order", "delivery",
            "staff", "friendly"]


def corpus(n: int, extra: str = "", seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    return [f"{' '.join(rng.sample(ORDINARY, 5))} acme {extra}".strip() for _ in range(n)]


def test_keyphrases_are_what_sets_the_window_apart():
    rng = random.Random(2)
    window = [f"{text} battery fire {rng.choice(['phone', 'charger', 'laptop'])}" for text in corpus(60, seed=3)]
    terms = distinctive_terms(window, corpus(600), exclude=["Acme"])
    assert terms[0] == "battery fire"
    assert not any("acme" in t for t in terms)  # the brand is in every post
    assert not set(terms) & set(ORDINARY)  # as common before as now
    assert "battery" not in terms  # covered by "battery fire"


def test_keyphrases_need_more_than_one_post():
    assert distinctive_terms(["only one post about a recall"], corpus(100)) == []
    window = [*corpus(30, seed=5), "spam spam spam recall"]
    assert "recall" not in distinctive_terms(window, corpus(300))  # one post is not a theme
    assert distinctive_terms(["the and of", "it is the"], []) == []  # stop words only


def post(post_id: str, label: str, polarity: float, minute: int):
    return SimpleNamespace(post_id=post_id, label=label, polarity=polarity,
                           created_at=datetime(2026, 12, 14, 9, minute, tzinfo=UTC))


def test_examples_are_the_most_negative_positive_and_recent():
    posts = [post("n1", "negative", -0.9, 50), post("n2", "negative", -0.5, 40), post("n3", "negative", -0.3, 30),
             post("p1", "positive", 0.8, 20), post("u1", "neutral", 0.0, 55)]
    newest_first = sorted(posts, key=lambda p: p.created_at, reverse=True)
    chosen = [(ref.post_id, ref.reason) for ref in pick_examples(newest_first)]
    assert chosen == [("n1", "most_negative"), ("n2", "most_negative"), ("p1", "most_positive"),
                      ("u1", "most_recent"), ("n3", "most_recent")]


def test_anomaly_rule_validation():
    rule = AlertRuleIn(brand="Acme", kind=AlertKind.ANOMALY, threshold=3.5, metric=AnomalyMetric.VOLUME)
    assert (rule.window_minutes, rule.cooldown_minutes, rule.baseline_weeks) == (60, 60, 4)
    threshold_rule = AlertRuleIn(brand="acme", kind=AlertKind.NEGATIVE_SHARE, threshold=0.5)
    assert threshold_rule.window_minutes == 15 and threshold_rule.metric is None
    bad = [dict(kind="anomaly", threshold=3),  # no metric
           dict(kind="anomaly", threshold=0.5, metric="volume"),  # z below 1
           dict(kind="anomaly", threshold=3, metric="volume", window_minutes=15),
           dict(kind="anomaly", threshold=3, metric="volume", baseline_weeks=0),
           dict(kind="anomaly", threshold=3, metric="volume", baseline_weeks=13),
           dict(kind="anomaly", threshold=3, metric="mood"),
           dict(kind="negative_share", threshold=0.5, metric="volume"),
           dict(kind="volume_spike", threshold=2, baseline_weeks=4)]
    for fields in bad:
        with pytest.raises(ValidationError):
            AlertRuleIn(brand="acme", **fields)


FIRED = datetime(2026, 12, 14, 9, 30, tzinfo=UTC)


def anomaly_event(event_id: int = 7, text: str = "battery <b>fire</b> & smoke") -> AlertEvent:
    return AlertEvent.model_validate({
        "id": event_id, "rule_id": 3, "brand": "acme", "kind": "anomaly", "fired_at": FIRED,
        "window_start": FIRED - timedelta(minutes=59), "window_end": FIRED + timedelta(minutes=1), "value": 6.2,
        "threshold": 3.0, "volume": 120, "message": "acme: volume anomaly, 120 posts",
        "details": {"metric": "volume", "z": 6.2, "observed": 120.0, "keyphrases": ["battery fire", "recall"],
                    "baseline": {"median": 14.0, "mad": 2.0, "scale": 2.97, "scale_from": "mad", "samples": 4,
                                 "seasonal": True, "hour_of_week": 9},
                    "example_posts": [{"post_id": "p1", "reason": "most_negative"}]},
        "examples": [{"post_id": "p1", "reason": "most_negative", "label": "negative", "polarity": -0.9,
                      "created_at": FIRED, "text_excerpt": text}]})


def test_webhook_body_is_slack_blocks_and_generic_json():
    body = webhook_body([anomaly_event()])
    assert body["text"] == "acme: volume anomaly, 120 posts" and body["id"] == "alert-7" and not body["summary"]
    assert body["alerts"][0]["details"]["z"] == 6.2 and body["alerts"][0]["examples"][0]["post_id"] == "p1"
    assert body["blocks"][0] == {"type": "header", "text": {"type": "plain_text",
                                                           "text": "acme: volume anomaly (z = +6.2)"}}
    rendered = str(body["blocks"])
    assert "Mon 09:00 UTC" in rendered and "battery fire, recall" in rendered
    assert "battery &lt;b&gt;fire&lt;/b&gt; &amp; smoke" in rendered  # post text is not Slack markup


def test_summary_lists_every_alert():
    events = [anomaly_event(i) for i in range(1, 15)]
    body = webhook_body(events, summary=True, limit_note="rate limit: 5 messages per hour")
    assert body["summary"] and len(body["alerts"]) == 14 and body["id"] == message_key(events, True)
    assert "14 alerts summarised (rate limit: 5 messages per hour)" in body["text"]
    assert "and 4 more" in body["blocks"][1]["text"]["text"]


def test_email_has_text_and_html_with_the_why():
    message = email_message([anomaly_event()], "monitor@example.org", ["ops@example.org", "pr@example.org"])
    assert message["Subject"] == "[sentiment monitor] acme: volume anomaly (z = +6.2)"
    assert message["Message-ID"] == "<alert-7@example.org>" and message["To"] == "ops@example.org, pr@example.org"
    plain = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "z-score: +6.20 (threshold 3)" in plain and "Keyphrases: battery fire, recall" in plain
    assert "[negative, most negative] battery <b>fire</b> & smoke" in plain
    assert "battery &lt;b&gt;fire&lt;/b&gt; &amp; smoke" in html and "<b>fire</b>" not in html
