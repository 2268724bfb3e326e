"""Shared by the trend tests: results to write, and bucket counts computed without the database."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from schemas import LABELS, SentimentResult


def result(post_id: str, brands: list[str], created_at: datetime, label: str, text: str = "",
           keywords: list[str] | None = None) -> SentimentResult:
    probs = {lab: (0.8 if lab == label else 0.1) for lab in LABELS}
    return SentimentResult(post_id=post_id, created_at=created_at, label=label, probabilities=probs, brands=brands,
                           model_version="test", latency_ms=0.5, text=text, keywords=keywords or [])


def bucket_start(moment: datetime, granularity: str) -> datetime:
    """Independent of PostgreSQL's date_trunc: plain datetime arithmetic in UTC."""
    moment = moment.astimezone(UTC)
    if granularity == "minute":
        return moment.replace(second=0, microsecond=0)
    if granularity == "hour":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def expected_counts(results: Iterable[SentimentResult], granularity: str,
                    brands_of=lambda r: r.brands) -> Counter:
    """(brand, bucket_start, label) -> posts, each unique post once."""
    unique = {r.post_id: r for r in results}.values()
    return Counter((brand, bucket_start(r.created_at, granularity), r.label.value)
                   for r in unique for brand in brands_of(r))


def bucket_counts(buckets) -> Counter:
    counts: Counter = Counter()
    for b in buckets:
        for label in ("negative", "neutral", "positive"):
            counts[(b.brand, b.bucket_start, label)] += getattr(b, label)
    return +counts


async def settle_keyphrases(engine) -> None:
    """Keyphrase passes until one counts nothing (a pass's horizon may stop short of a transaction just ended)."""
    import asyncio

    from monitor.store.keyphrases import count_keyphrases

    for _ in range(20):
        done = await count_keyphrases(engine)
        if done is not None and not done.counted and not done.removed:
            return
        await asyncio.sleep(0.05)
