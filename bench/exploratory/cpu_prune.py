# Retention on the 2-core VM: how fast a pass deletes, and what it does to the sink's batches meanwhile.
#   PYTHONPATH=$PWD .venv/bin/python bench/exploratory/cpu_prune.py [old_posts]
# 2026-11-26 13:48-13:49 UTC, commit cd8233b, 200,000: 3.7 s and 4.2 s a pass (107,341 and 94,963 rows/s); batches
# of 500 alone median 21 / 23 ms, p95 30 / 34 ms; during the pass median 26 / 26 ms, p95 40 / 86 ms.
# An embedded PostgreSQL (migrated) gets `old_posts` expired posts (half with a 3 KB thumbnail), as many minute
# buckets, and as many fresh posts; then the sink's write path runs batches of 500 new results for 20 s alone
# (baseline), and again while one prune pass runs. Prints rows/s of the pass and batch latencies of both phases.
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from monitor.devstack.embedded.postgres import database_url, postgres_server
from monitor.sink.writer import write_results
from monitor.store.db import create_engine
from monitor.store.migrate import upgrade_head
from monitor.store.retention import Retention, prune
from tests.integration.trend_helpers import result

OLD = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
SEED = """
INSERT INTO post_sentiment (post_id, created_at, processed_at, label, p_negative, p_neutral, p_positive, polarity,
                            brands, tagged_brands, keywords, model_version, text_excerpt)
SELECT :prefix || g, now() - :age, now() - :age, 'positive', 0.1, 0.1, 0.8, 0.7, ARRAY['b' || (g % 100)],
       ARRAY['b' || (g % 100)], '{}', 'seed', repeat('x', 200)
FROM generate_series(1, :n) g;
INSERT INTO post_thumbnail (post_id, jpeg)
SELECT :prefix || g, decode(repeat('ff', 3000), 'hex') FROM generate_series(1, :n, 2) g;
"""
BUCKETS = """
INSERT INTO trend_bucket (brand, granularity, bucket_start, language, language_supported, positive, polarity_sum)
SELECT 'b' || (g % 100), 'minute', date_trunc('minute', now() - interval '61 days') - (g / 100) * interval '1 minute',
       'und', true, 1, 0.7
FROM generate_series(0, :n - 1) g;
"""


async def batches(engine, seconds: float, prefix: str, latencies: list[float]) -> list[float]:
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        now = datetime.now(UTC)
        batch = [result(f"{prefix}-{n}-{i}", [f"b{i % 100}"], now, "positive") for i in range(500)]
        start = time.perf_counter()
        await write_results(engine, batch)
        latencies.append(time.perf_counter() - start)
        n += 1
    return latencies


def summary(latencies: list[float]) -> str:
    ms = sorted(x * 1000 for x in latencies)
    return (f"{len(ms)} batches, median {statistics.median(ms):.0f} ms, p95 {ms[int(0.95 * (len(ms) - 1))]:.0f} ms, "
            f"max {ms[-1]:.0f} ms")


async def main(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        for statement in SEED.strip().split(";\n"):
            for prefix, age, n in (("old-", timedelta(days=31), OLD), ("new-", timedelta(hours=1), OLD)):
                await conn.execute(text(statement), {"prefix": prefix, "age": age, "n": n})
        await conn.execute(text(BUCKETS), {"n": OLD})
        await conn.execute(text("ANALYZE"))
    print(f"seeded {OLD:,} expired and {OLD:,} kept posts (half with a 3 KB thumbnail), {OLD:,} expired minute buckets")
    print("sink alone:         ", summary(await batches(engine, 20, "alone", [])))
    during: list[float] = []
    writes = asyncio.create_task(batches(engine, 1e9, "during", during))
    start = time.perf_counter()
    report = await prune(engine, Retention(posts_days=30, minute_buckets_days=60))
    took = time.perf_counter() - start
    writes.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writes
    print(f"prune pass: {report.posts:,} posts and {report.minute_buckets:,} minute buckets in {took:.1f} s "
          f"({(report.posts + report.minute_buckets) / took:,.0f} rows/s)")
    print("sink during the pass:", summary(during))
    await engine.dispose()


server = postgres_server(Path(tempfile.mkdtemp(prefix="bench-prune-")))
server.start()
try:
    upgrade_head(database_url(server.port))
    asyncio.run(main(database_url(server.port)))
finally:
    server.stop()
