"""`monitor bench sink`: rows/s of the sink's batched write path against a row-at-a-time baseline.

Both paths run in the same process, on the same PostgreSQL, over the same deliveries (with
redeliveries mixed in, and tracked-brand rules matched per post). Everything happens in a
private schema (`bench_sink`) that is dropped afterwards, so pointing DATABASE_URL at a
real database never touches its tables. Without DATABASE_URL an embedded PostgreSQL is started.

With `--weeks-kept N` the store first holds N past weeks of stored posts, each in its weekly partition, as a sink
with that retention would: the writer looks for every post in every partition, so this is what its cost grows
with. Between phases only the benchmark's own rows go (the coming weeks' partitions and the buckets).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, literal, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from benchmarks.database import private_schema
from benchmarks.report import device_name, host_info, write_report
from core.logging import get_logger
from monitor.sink.writer import post_row, write_results
from monitor.store.brand_rules import BrandMatcher
from monitor.store.brands import BrandRuleCache, TrackedBrand, add_brand
from monitor.store.db import (
    BUCKET_KEY,
    GRANULARITIES,
    UNKNOWN_LANGUAGE,
    bucket_columns,
    create_engine,
    post_sentiment,
    trend_bucket,
)
from monitor.store.migrate import upgrade_head
from monitor.store.partitions import PARTITIONED_TABLES, coming_weeks, ensure_partitions, week_bounds, week_of
from schemas import LABELS, SentimentResult

log = get_logger(__name__)

SCHEMA = "bench_sink"
TRACKED = [TrackedBrand(name=f"brand{i}", aliases=[f"brand {i} corp"], hashtags=[f"brand{i}love"]) for i in range(10)]


def sample_deliveries(rows: int, redelivered_share: float = 0.1, seed: int = 5) -> list[SentimentResult]:
    """`rows` deliveries: unique results spread over 3 days, plus redeliveries of some of them, shuffled."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    unique_count = max(1, int(rows / (1 + redelivered_share)))
    unique = []
    for i in range(unique_count):
        label = rng.choice(LABELS)
        probs = {lab: (0.7 if lab == label else 0.15) for lab in LABELS}
        mention = rng.randrange(len(TRACKED))
        unique.append(SentimentResult(
            post_id=f"bench-{seed}-{i}", created_at=start + timedelta(seconds=rng.uniform(0, 3 * 86400)),
            label=label, probabilities=probs, brands=[f"tag{rng.randrange(20)}"], keywords=["bench"],
            model_version="bench", latency_ms=1.0, image_ref=None,
            text=f"Thoughts on #brand{mention}love and Brand {mention} Corp today: post {i}, not brandville",
        ))
    deliveries = unique + rng.choices(unique, k=rows - unique_count)
    rng.shuffle(deliveries)
    return deliveries


async def write_row_at_a_time(engine: AsyncEngine, results: Sequence[SentimentResult],
                              rules: BrandRuleCache) -> None:
    """The baseline: one transaction per result, one statement per post row and per bucket."""
    for result in results:
        async with engine.begin() as conn:
            row = post_row(result, await rules.refresh(conn))
            stored = select(post_sentiment.c.post_id).where(post_sentiment.c.post_id == result.post_id)
            if await conn.scalar(stored) is not None:  # a single writer: no lock needed between the look and the insert
                continue
            await conn.execute(insert(post_sentiment).values({**row, "created_at": result.created_at,
                                                              "thumbnail": result.thumbnail}))
            label = result.label.value
            for brand in row["brands"]:
                for granularity in GRANULARITIES:
                    start = func.date_trunc(granularity, literal(result.created_at), "UTC")
                    stmt = insert(trend_bucket).values(
                        brand=brand, granularity=granularity, bucket_start=start,
                        language=result.language or UNKNOWN_LANGUAGE, language_supported=result.language_supported,
                        model_version=result.model_version, negative=int(label == "negative"),
                        neutral=int(label == "neutral"), positive=int(label == "positive"),
                        polarity_sum=result.polarity)
                    ex, tb = stmt.excluded, trend_bucket.c
                    await conn.execute(stmt.on_conflict_do_update(
                        index_elements=list(BUCKET_KEY),
                        set_={"negative": tb.negative + ex.negative, "neutral": tb.neutral + ex.neutral,
                              "positive": tb.positive + ex.positive,
                              "polarity_sum": tb.polarity_sum + ex.polarity_sum}))


async def write_batched(engine: AsyncEngine, results: Sequence[SentimentResult], rules: BrandRuleCache,
                        batch_size: int) -> None:
    for start in range(0, len(results), batch_size):
        await write_results(engine, results[start : start + batch_size], rules)


FILL_WEEK = """
INSERT INTO post_sentiment (post_id, created_at, processed_at, label, p_negative, p_neutral, p_positive, polarity,
                            brands, tagged_brands, keywords, model_version, text_excerpt, language, language_supported)
SELECT 'kept-' || CAST(:week AS text) || '-' || i, at, at, 'neutral', 0.1, 0.8, 0.1, 0, ARRAY['brand' || i % 10],
       '{}', '{}', 'bench', 'a stored post', 'en', true
  FROM generate_series(1, CAST(:posts AS int)) AS i,
       LATERAL (SELECT CAST(:start AS timestamptz) + make_interval(secs => i * 604800.0 / CAST(:posts AS int))
                AS at) AS t
"""


async def _keep_weeks(engine: AsyncEngine, weeks: int, posts_per_week: int) -> None:
    """`weeks` past weeks of stored posts, each in its partition."""
    this_week = week_of(datetime.now(UTC))
    past = [this_week - timedelta(weeks=n) for n in range(1, weeks + 1)]
    async with engine.begin() as conn:
        await conn.run_sync(ensure_partitions, past)
    for week in past:
        async with engine.begin() as conn:
            await conn.execute(text(FILL_WEEK), {"week": f"{week:%Y%m%d}", "posts": posts_per_week,
                                                 "start": week_bounds(week)[0]})
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE post_sentiment"))


async def _reset(engine: AsyncEngine) -> None:
    """Take out what the benchmark wrote: the current and coming weeks' per-post rows, and every bucket."""
    partitions = [table.partition(week) for week in coming_weeks(datetime.now(UTC)) for table in PARTITIONED_TABLES]
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE trend_bucket, {', '.join(partitions)}"))


async def _bucket_totals(engine: AsyncEngine) -> dict:
    async with engine.connect() as conn:
        tb = trend_bucket.c
        rows = await conn.execute(select(*bucket_columns(), tb.language, tb.language_supported, tb.model_version))
        return {(r.brand, r.granularity, r.bucket_start, r.language, r.language_supported, r.model_version):
                (r.negative, r.neutral, r.positive, round(r.polarity_sum, 6)) for r in rows}


async def _timed(coro) -> float:
    began = time.perf_counter()
    await coro
    return time.perf_counter() - began


async def _measure(url: str, rows: int, baseline_rows: int, batch_size: int, weeks_kept: int,
                   posts_per_week: int) -> dict:
    engine = create_engine(url)
    try:
        await _keep_weeks(engine, weeks_kept, posts_per_week)
        for brand in TRACKED:
            await add_brand(engine, brand, replace=True)
        deliveries = sample_deliveries(rows)
        subset = deliveries[:baseline_rows]
        rules = BrandRuleCache()
        await write_batched(engine, sample_deliveries(200, seed=99), rules, batch_size)  # warm-up: connections, plans
        await _reset(engine)
        batched_subset_s = await _timed(write_batched(engine, subset, rules, batch_size))
        batched_totals = await _bucket_totals(engine)
        await _reset(engine)
        baseline_s = await _timed(write_row_at_a_time(engine, subset, rules))
        same = batched_totals == await _bucket_totals(engine)
        await _reset(engine)
        batched_s = await _timed(write_batched(engine, deliveries, rules, batch_size))
        async with engine.connect() as conn:
            version = (await conn.execute(text("SHOW server_version"))).scalar_one()
            fsync = (await conn.execute(text("SHOW fsync"))).scalar_one()
            posts = (await conn.execute(select(func.count()).select_from(post_sentiment))).scalar_one() - (
                weeks_kept * posts_per_week)
        matcher: BrandMatcher = rules.matcher
    finally:
        await engine.dispose()
    return {
        "batched": {"rows": rows, "seconds": round(batched_s, 3), "rows_per_s": round(rows / batched_s, 1),
                    "batch_size": batch_size, "unique_posts": posts},
        "batched_same_rows_as_baseline": {"rows": baseline_rows, "seconds": round(batched_subset_s, 3),
                                          "rows_per_s": round(baseline_rows / batched_subset_s, 1)},
        "row_at_a_time": {"rows": baseline_rows, "seconds": round(baseline_s, 3),
                          "rows_per_s": round(baseline_rows / baseline_s, 1)},
        "ratio": round((rows / batched_s) / (baseline_rows / baseline_s), 1),
        "bucket_totals_match": same,
        "tracked_brands": len(matcher),
        "weeks_kept": weeks_kept,
        "posts_per_week_kept": posts_per_week if weeks_kept else 0,
        "postgres": {"version": version, "fsync": fsync},
    }


def run_sink_benchmark(database_url: str | None, rows: int = 20_000, baseline_rows: int = 2_000,
                       batch_size: int = 500, out: Path | None = None, weeks_kept: int = 0,
                       posts_per_week: int = 20_000) -> dict:
    """Measure both write paths; write the JSON report to `out` when given."""
    host = host_info()
    with private_schema(database_url, SCHEMA) as (url, embedded):
        upgrade_head(url)
        measured = asyncio.run(_measure(url, rows, baseline_rows, batch_size, weeks_kept, posts_per_week))
    kept = f" --weeks-kept {weeks_kept} --posts-per-week {posts_per_week}" if weeks_kept else ""
    report = {
        "benchmark": "sink write path (batched one-statement transaction vs row-at-a-time)",
        "command": f"monitor bench sink --rows {rows} --baseline-rows {baseline_rows} --batch-size {batch_size}"
                   f"{kept}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(),
        "host": host,
        "embedded_postgres": embedded,
        **measured,
    }
    write_report(report, out)
    log.info("sink benchmark done", batched_rows_per_s=report["batched"]["rows_per_s"],
             baseline_rows_per_s=report["row_at_a_time"]["rows_per_s"], ratio=report["ratio"])
    return report
