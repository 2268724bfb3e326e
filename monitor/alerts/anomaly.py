"""Anomaly rules: the last hour of a brand against its robust hourly baseline, and the "why" when it fires.

Everything is read from PostgreSQL in the alert loop (never in the sink): the window from minute buckets, the
baseline from hour buckets, and only when a rule fires, a bounded number of the window's and the baseline's
posts for the keyphrases and examples. Like every trend figure by default, only posts in languages the model
supports count.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import ARRAY, Text, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.logging import get_logger
from monitor.alerts.baseline import (
    Baseline,
    baseline_samples,
    exceeds,
    hour_of_week,
    hour_of_week_label,
    hour_start,
    robust_baseline,
    z_score,
)
from monitor.alerts.keyphrases import MAX_BACKGROUND_POSTS, MAX_WINDOW_POSTS, distinctive_terms
from monitor.alerts.rules import AlertRule, AnomalyDetails, AnomalyMetric, BaselineInfo, ExampleRef
from monitor.store.db import post_sentiment, trend_bucket

log = get_logger(__name__)

EXAMPLES_PER_REASON = 2


async def _window(conn: AsyncConnection, brand: str, since: datetime, until: datetime) -> tuple[int, int, int]:
    """(volume, negative, positive) over minute buckets in [since, until)."""
    tb = trend_bucket.c
    row = (await conn.execute(select(func.coalesce(func.sum(tb.volume), 0), func.coalesce(func.sum(tb.negative), 0),
                                     func.coalesce(func.sum(tb.positive), 0)).where(
        tb.language_supported, tb.brand == brand, tb.granularity == "minute", tb.bucket_start >= since,
        tb.bucket_start < until))).one()
    return int(row[0]), int(row[1]), int(row[2])


async def _hourly(conn: AsyncConnection, brand: str, since: datetime, until: datetime,
                  metric: AnomalyMetric) -> tuple[dict[datetime, float], datetime | None]:
    """Hour start -> the metric's value in [since, until), and the brand's first hour bucket (its history)."""
    tb = trend_bucket.c
    volume = func.sum(tb.volume)
    supported = (tb.language_supported, tb.brand == brand, tb.granularity == "hour")
    rows = await conn.execute(select(tb.bucket_start, volume, func.sum(tb.positive), func.sum(tb.negative))
                              .where(*supported, tb.bucket_start >= since, tb.bucket_start < until)
                              .group_by(tb.bucket_start))
    hourly: dict[datetime, float] = {}
    for start, vol, positive, negative in rows:
        if not vol:
            continue
        hourly[start] = float(vol) if metric == AnomalyMetric.VOLUME else (positive - negative) / vol
    first = (await conn.execute(select(func.min(tb.bucket_start)).where(*supported))).scalar_one()
    return hourly, first


async def _posts(conn: AsyncConnection, brand: str, since: datetime, until: datetime, limit: int) -> list:
    """The newest undeleted posts about `brand` in [since, until) (GIN index on brands, index on created_at)."""
    ps = post_sentiment.c
    return list(await conn.execute(
        select(ps.post_id, ps.label, ps.polarity, ps.created_at, ps.text_excerpt)
        .where(ps.brands.op("@>")(literal([brand], ARRAY(Text))), ps.deleted_at.is_(None), ps.language_supported,
               ps.created_at >= since, ps.created_at < until)
        .order_by(ps.created_at.desc(), ps.post_id).limit(limit)))


def pick_examples(posts: list) -> list[ExampleRef]:
    """The most negative, the most positive and the most recent posts of the window, each post once."""
    chosen: dict[str, str] = {}
    orders = (("most_negative", sorted(posts, key=lambda p: (p.polarity, p.post_id))),
              ("most_positive", sorted(posts, key=lambda p: (-p.polarity, p.post_id))),
              ("most_recent", posts))  # already newest first
    for reason, ordered in orders:
        taken = 0
        for post in ordered:
            if taken == EXAMPLES_PER_REASON:
                break
            if post.post_id in chosen or (reason == "most_negative" and post.label != "negative") or (
                    reason == "most_positive" and post.label != "positive"):
                continue
            chosen[post.post_id] = reason
            taken += 1
    return [ExampleRef(post_id=post_id, reason=reason) for post_id, reason in chosen.items()]


def _message(rule: AlertRule, observed: float, volume: int, z: float, baseline: Baseline, hour: int,
             keyphrases: list[str]) -> str:
    usual = f"at {hour_of_week_label(hour)} in past weeks" if baseline.seasonal else "per past hour"
    if rule.metric == AnomalyMetric.VOLUME:
        head = (f"{rule.brand}: volume anomaly, {volume} posts in the last hour vs a median of "
                f"{baseline.median:g} {usual}")
    else:
        moved = "fell" if z < 0 else "rose"
        head = (f"{rule.brand}: net sentiment {moved} to {observed:+.2f} over {volume} posts in the last hour vs "
                f"a median of {baseline.median:+.2f} {usual}")
    about = f"; about: {', '.join(keyphrases)}" if keyphrases else ""
    return f"{head} (z = {z:+.1f}, threshold {rule.threshold:g}){about}"


async def check_anomaly(conn: AsyncConnection, rule: AlertRule, now: datetime) -> dict | None:
    """The `alert_event` row this anomaly rule fires now, or None (quiet, too few posts, or too short a history)."""
    metric = rule.metric or AnomalyMetric.VOLUME
    until = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
    since = until - timedelta(minutes=rule.window_minutes)
    volume, negative, positive = await _window(conn, rule.brand, since, until)
    if volume < max(rule.min_volume, 1):
        return None
    observed = float(volume) if metric == AnomalyMetric.VOLUME else (positive - negative) / volume
    weeks = rule.baseline_weeks or 4
    reference = hour_start(since + (until - since) / 2)
    hourly, first = await _hourly(conn, rule.brand, hour_start(since) - timedelta(weeks=weeks), hour_start(since),
                                  metric)
    samples = baseline_samples(hourly, reference, since, weeks, first,
                               missing=0.0 if metric == AnomalyMetric.VOLUME else None)
    if samples is None:
        log.debug("anomaly rule skipped: history too short for a baseline", rule_id=rule.id, brand=rule.brand)
        return None
    baseline = robust_baseline(samples, metric.value, volume)
    z = z_score(observed, baseline)
    if not exceeds(metric.value, z, rule.threshold):
        return None

    window_posts = await _posts(conn, rule.brand, since, until, MAX_WINDOW_POSTS)
    background = await _posts(conn, rule.brand, hour_start(since) - timedelta(weeks=weeks), since,
                              MAX_BACKGROUND_POSTS)
    try:
        keyphrases = await asyncio.to_thread(distinctive_terms, [p.text_excerpt for p in window_posts],
                                             [p.text_excerpt for p in background], 8, [rule.brand])
    except Exception as exc:  # noqa: BLE001 - the alert matters more than its keyphrases
        log.error("anomaly keyphrases failed", rule_id=rule.id, error=str(exc) or type(exc).__name__)
        keyphrases = []
    hour = hour_of_week(reference)
    details = AnomalyDetails(
        metric=metric, z=z, observed=observed,
        baseline=BaselineInfo(median=baseline.median, mad=baseline.mad, scale=baseline.scale,
                              scale_from=baseline.scale_from, samples=baseline.samples, seasonal=baseline.seasonal,
                              hour_of_week=hour),
        keyphrases=keyphrases, example_posts=pick_examples(window_posts))
    return {"rule_id": rule.id, "brand": rule.brand, "kind": rule.kind.value, "fired_at": now,
            "window_start": since, "window_end": until, "value": z, "threshold": rule.threshold, "volume": volume,
            "message": _message(rule, observed, volume, z, baseline, hour, keyphrases),
            "details": details.model_dump(mode="json")}

