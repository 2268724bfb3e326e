"""What a delivered alert says: a Slack-compatible webhook body and a plain-text + HTML email, both with the why.

Pure rendering, no I/O. One message is either one alert (with its z-score, baseline, keyphrases and example
posts when it is an anomaly) or, when the rate limit leaves no room for each, a summary of several.
"""

from __future__ import annotations

import html
from email.message import EmailMessage
from typing import Any

from monitor.alerts.baseline import hour_of_week_label
from monitor.alerts.rules import AlertEvent, AlertKind

MAX_EXCERPT_CHARS = 200
MAX_SUMMARY_LINES = 10


def message_key(events: list[AlertEvent], summary: bool) -> str:
    """A stable id per message, so a receiver can drop a copy redelivered after a crash."""
    if summary:
        return f"alert-summary-{events[0].id}-{events[-1].id}-{len(events)}"
    return f"alert-{events[0].id}"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_EXCERPT_CHARS else text[: MAX_EXCERPT_CHARS - 1] + "…"


def title(event: AlertEvent) -> str:
    if event.kind == AlertKind.ANOMALY and event.details:
        return f"{event.brand}: {event.details.metric.value.replace('_', ' ')} anomaly (z = {event.details.z:+.1f})"
    return f"{event.brand}: {event.kind.value.replace('_', ' ')}"


def why_lines(event: AlertEvent) -> list[tuple[str, str]]:
    """(label, value) pairs of an anomaly's why, shared by every format; empty for a threshold alert."""
    details = event.details
    if details is None:
        return []
    base = details.baseline
    hour = hour_of_week_label(base.hour_of_week)
    kind = f"same hour of week ({hour})" if base.seasonal else "all past hours (history too short for seasonality)"
    observed = (f"{details.observed:g} posts in the last hour" if details.metric.value == "volume"
                else f"{details.observed:+.3f} over the last hour ({event.volume} posts)")
    lines = [("z-score", f"{details.z:+.2f} (threshold {event.threshold:g})"),
             ("Observed", observed),
             ("Baseline", f"median {base.median:g}, scale {base.scale:.3g} ({base.scale_from}), "
                          f"{base.samples} hourly samples, {kind}")]
    if details.keyphrases:
        lines.append(("Keyphrases", ", ".join(details.keyphrases)))
    return lines


def _slack_escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup: user text shows as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_body(events: list[AlertEvent], summary: bool = False, limit_note: str = "") -> dict[str, Any]:
    """Slack-compatible `text` + `blocks`, and the generic fields: `alerts` (every event as the API lists it),
    `summary`, `id` (stable per message)."""
    body: dict[str, Any] = {"id": message_key(events, summary) if events else "alert-none", "summary": summary,
                            "alerts": [event.model_dump(mode="json") for event in events]}
    if len(events) == 1 and not summary:
        event = events[0]
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title(event)[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _slack_escape(event.message)[:3000]}}]
        fields = [{"type": "mrkdwn", "text": f"*{label}*\n{_slack_escape(value)}"[:2000]}
                  for label, value in why_lines(event)]
        if fields:
            blocks.append({"type": "section", "fields": fields[:10]})
        if event.examples:
            posts = "\n".join(f"• [{p.label}] {_slack_escape(_excerpt(p.text_excerpt))}" for p in event.examples)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*Example posts*\n{posts}"[:3000]}})
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"alert {event.id} · fired {event.fired_at.isoformat(timespec='seconds')}"}]})
        body.update(text=event.message, blocks=blocks)
        return body
    head = f"{len(events)} alerts" + (f" summarised ({limit_note})" if summary and limit_note else "")
    lines = [f"• {_slack_escape(title(e))}: {_slack_escape(e.message)}"[:300] for e in events[:MAX_SUMMARY_LINES]]
    if len(events) > MAX_SUMMARY_LINES:
        lines.append(f"… and {len(events) - MAX_SUMMARY_LINES} more")
    body.update(text=f"{head}: " + "; ".join(title(e) for e in events[:MAX_SUMMARY_LINES]),
                blocks=[{"type": "header", "text": {"type": "plain_text", "text": head[:150]}},
                        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}}])
    return body


def _plain(event: AlertEvent) -> str:
    parts = [title(event), "", event.message, ""]
    parts += [f"{label}: {value}" for label, value in why_lines(event)]
    if event.examples:
        parts += ["", "Example posts:"] + [f"  - [{p.label}, {p.reason.replace('_', ' ')}] {_excerpt(p.text_excerpt)}"
                                           for p in event.examples]
    start, end = event.window_start.isoformat(timespec="minutes"), event.window_end.isoformat(timespec="minutes")
    parts += ["", f"Alert {event.id}, fired {event.fired_at.isoformat(timespec='seconds')}, window {start} to {end}"]
    return "\n".join(parts)


def _html(event: AlertEvent) -> str:
    e = html.escape
    rows = "".join(f"<tr><th align='left'>{e(label)}</th><td>{e(value)}</td></tr>" for label, value in why_lines(event))
    posts = "".join(f"<li><b>{e(p.label)}</b> ({e(p.reason.replace('_', ' '))}): {e(_excerpt(p.text_excerpt))}</li>"
                    for p in event.examples)
    return (f"<h2>{e(title(event))}</h2><p>{e(event.message)}</p>"
            + (f"<table>{rows}</table>" if rows else "")
            + (f"<h3>Example posts</h3><ul>{posts}</ul>" if posts else "")
            + f"<p style='color:#666'>Alert {event.id}, fired {e(event.fired_at.isoformat(timespec='seconds'))}</p>")


def email_message(events: list[AlertEvent], sender: str, recipients: list[str], summary: bool = False,
                  limit_note: str = "") -> EmailMessage:
    """One alert, or a summary of several; `Message-ID` is stable per message (see `message_key`)."""
    message = EmailMessage()
    domain = sender.rpartition("@")[2] or "localhost"
    message["From"], message["To"] = sender, ", ".join(recipients)
    message["Message-ID"] = f"<{message_key(events, summary)}@{domain}>"
    if len(events) == 1 and not summary:
        message["Subject"] = f"[sentiment monitor] {title(events[0])}"
        message.set_content(_plain(events[0]))
        message.add_alternative(f"<html><body>{_html(events[0])}</body></html>", subtype="html")
        return message
    head = f"{len(events)} alerts" + (f" summarised ({limit_note})" if summary and limit_note else "")
    message["Subject"] = f"[sentiment monitor] {head}"
    message.set_content("\n\n".join([head, *(f"- {title(e)}: {e.message}" for e in events)]))
    items = "".join(f"<li><b>{html.escape(title(e))}</b>: {html.escape(e.message)}</li>" for e in events)
    message.add_alternative(f"<html><body><h2>{html.escape(head)}</h2><ul>{items}</ul></body></html>",
                            subtype="html")
    return message
