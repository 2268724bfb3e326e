"""`monitor bench queries`: the dashboard's API requests over a large generated store, p50/p95 per view.

Generated data, in the benchmark's own schema (`bench_queries`): `--posts` posts over the last `--days` days for
`--brands` brands, written in time order as a live stream writes them (a few large brands, many small: brand k's
share falls with k, about 17% for the largest), each with a label, a language, a source and a six-word text from a
fixed vocabulary of 59 product words (so every search term is in about a tenth of the posts: harder than real
text); trend buckets made from them as the sink makes them (hour and day for the whole span, minute for the last
`MINUTE_DAYS`, what retention keeps), keyphrase and source buckets (hour for 31 days, day for the span). Then
every view the dashboard loads is requested through the real API app (in process, over ASGI, with an embedded
Redis behind its hot series), `--requests` times each, a third of them for the largest brand and the rest for
random others, and the report gives each view's p50, p95 and worst latency.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

from benchmarks.database import private_schema
from benchmarks.report import device_name, host_info, write_report
from core.logging import get_logger
from core.progress import progress_bar
from core.settings import Settings
from monitor.store.db import create_engine
from monitor.store.migrate import upgrade_head
from monitor.store.partitions import ensure_partitions, weeks_between

log = get_logger(__name__)

SCHEMA = "bench_queries"
MINUTE_DAYS = 40
CHUNK = 500_000
VOCABULARY = " ".join(("battery screen price delivery support refund update camera store service app login crash slow",
                       "fast great terrible love hate broken new old late early cheap expensive quality design sound",
                       "light heavy order return warranty replacement charger cable phone laptop watch tablet speaker",
                       "fix bug feature release event launch ad campaign offer discount sale deal coupon shipping",
                       "package box manual")).split(" ")

GENERATE_POSTS = """
INSERT INTO post_sentiment (post_id, created_at, processed_at, label, p_negative, p_neutral, p_positive, polarity,
                            brands, tagged_brands, keywords, model_version, text_excerpt, language, language_supported,
                            source)
SELECT 'q' || i, at, at, label, pn, pu, pp, pp - pn, ARRAY[brand], ARRAY[brand], '{}', 'bench@000000000000',
       words, NULLIF(lang, 'und'), lang IN ('en', 'und'), src
  FROM (SELECT i, now() - make_interval(days => CAST(:days AS int)) * (1 - (i - random()) / CAST(:total AS bigint))
                   AS at,
               'brand' || floor(:brands * power(random(), 2.2))::int AS brand,
               (ARRAY['negative', 'neutral', 'positive'])[1 + floor(random() * 3)::int] AS label,
               (ARRAY['en', 'en', 'en', 'en', 'de', 'fr', 'es', 'und'])[1 + floor(random() * 8)::int] AS lang,
               (ARRAY['bluesky', 'mastodon', 'rss', 'file'])[1 + floor(random() * 4)::int] AS src,
               concat_ws(' ', v[1 + floor(random() * n)::int], v[1 + floor(random() * n)::int],
                         v[1 + floor(random() * n)::int], v[1 + floor(random() * n)::int],
                         v[1 + floor(random() * n)::int], v[1 + floor(random() * n)::int]) AS words
          FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS i,
               (SELECT CAST(:vocabulary AS text[]) AS v, cardinality(CAST(:vocabulary AS text[])) AS n) AS vocab) AS g,
       LATERAL (SELECT CASE label WHEN 'negative' THEN 0.8 ELSE 0.1 END AS pn,
                       CASE label WHEN 'neutral' THEN 0.8 ELSE 0.1 END AS pu,
                       CASE label WHEN 'positive' THEN 0.8 ELSE 0.1 END AS pp) AS p
"""

GENERATE_BUCKETS = """
INSERT INTO trend_bucket (brand, granularity, bucket_start, language, language_supported, model_version,
                          negative, neutral, positive, polarity_sum)
SELECT b.brand, g.granularity, date_trunc(g.granularity, p.created_at, 'UTC'), coalesce(p.language, 'und'),
       p.language_supported, p.model_version, count(*) FILTER (WHERE p.label = 'negative'),
       count(*) FILTER (WHERE p.label = 'neutral'), count(*) FILTER (WHERE p.label = 'positive'), sum(p.polarity)
  FROM post_sentiment AS p CROSS JOIN unnest(p.brands) AS b(brand)
 CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS g(granularity)
 WHERE g.granularity <> 'minute' OR p.created_at >= now() - make_interval(days => CAST(:minute_days AS int))
 GROUP BY 1, 2, 3, 4, 5, 6
"""

GENERATE_KEYPHRASES = """
INSERT INTO keyphrase_bucket (brand, granularity, bucket_start, label, phrase, posts)
SELECT b.brand, g.granularity, date_trunc(g.granularity, p.created_at, 'UTC'), p.label, w.word,
       count(DISTINCT p.post_id)
  FROM post_sentiment AS p CROSS JOIN unnest(p.brands) AS b(brand)
 CROSS JOIN (VALUES ('hour'), ('day')) AS g(granularity)
 CROSS JOIN LATERAL regexp_split_to_table(p.text_excerpt, ' ') AS w(word)
 WHERE g.granularity = 'day' OR p.created_at >= now() - interval '31 days'
 GROUP BY 1, 2, 3, 4, 5
"""

GENERATE_SOURCES = """
INSERT INTO source_bucket (brand, granularity, bucket_start, source, posts)
SELECT b.brand, g.granularity, date_trunc(g.granularity, p.created_at, 'UTC'), coalesce(p.source, 'unknown'), count(*)
  FROM post_sentiment AS p CROSS JOIN unnest(p.brands) AS b(brand)
 CROSS JOIN (VALUES ('hour'), ('day')) AS g(granularity)
 WHERE g.granularity = 'day' OR p.created_at >= now() - interval '31 days'
 GROUP BY 1, 2, 3, 4
"""

DERIVED = {"trend_bucket": (GENERATE_BUCKETS, {"minute_days": MINUTE_DAYS}),
           "keyphrase_bucket": (GENERATE_KEYPHRASES, {}),
           "source_bucket": (GENERATE_SOURCES, {})}
"""The tables made from the posts, as the sink and its keyphrase pass would have made them."""


def generate(url: str, posts: int, brands: int, days: int) -> dict:
    """Fill the schema; returns row counts and how long each step took."""
    async def run() -> dict:
        engine = create_engine(url)
        timings: dict[str, float] = {}
        try:
            async with engine.connect() as conn:
                stored = (await conn.execute(text("SELECT count(*) FROM post_sentiment"))).scalar_one()
            began = time.perf_counter()
            now = datetime.now(UTC)
            async with engine.begin() as conn:  # the weeks the posts are stored in, as the sink would have made them
                await conn.run_sync(ensure_partitions, weeks_between(now - timedelta(days=days + 1), now))
            with progress_bar(total=posts - stored, unit="post", desc="generating posts") as bar:
                for first in range(stored + 1, posts + 1, CHUNK):
                    last = min(posts, first + CHUNK - 1)
                    async with engine.begin() as conn:
                        await conn.execute(text(GENERATE_POSTS), {"first": first, "last": last, "total": posts,
                                                                  "days": days, "brands": brands,
                                                                  "vocabulary": VOCABULARY})
                    bar.update(last - first + 1)
            timings["posts_s"] = time.perf_counter() - began
            for table, (statement, params) in DERIVED.items():
                async with engine.connect() as conn:
                    if (await conn.execute(text(f"SELECT EXISTS (SELECT FROM {table})"))).scalar_one():
                        continue  # a kept store: made by an earlier run
                began = time.perf_counter()
                async with engine.begin() as conn:
                    await conn.execute(text(statement), params)
                timings[f"{table}_s"] = time.perf_counter() - began
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                began = time.perf_counter()
                await conn.execute(text("VACUUM ANALYZE"))
                timings["vacuum_analyze_s"] = time.perf_counter() - began
                counts = {table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
                          for table in ("post_sentiment", *DERIVED)}
                size = (await conn.execute(text(
                    "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :schema AND c.relkind = 'r'"),
                    {"schema": SCHEMA})).scalar_one()
        finally:
            await engine.dispose()
        return {"rows": counts, "size": size, **{k: round(v, 1) for k, v in timings.items()}}

    return asyncio.run(run())


def views(now: datetime) -> dict[str, Callable[[str], tuple[str, dict]]]:
    """Each dashboard request as (path, params) for a brand: what the page asks on load and on a range change."""
    def iso(moment: datetime) -> str:
        return moment.isoformat()

    day, week, month, year = (now - timedelta(days=d) for d in (1, 7, 30, 365))
    return {
        "trends minute, 24 h": lambda b: (f"/api/brands/{b}/trends", {"granularity": "minute", "since": iso(day)}),
        "trends hour, 30 days": lambda b: (f"/api/brands/{b}/trends", {"granularity": "hour", "since": iso(month)}),
        "trends day, 1 year": lambda b: (f"/api/brands/{b}/trends", {"granularity": "day", "since": iso(year)}),
        "trends hour, one language, 7 days": lambda b: (f"/api/brands/{b}/trends",
                                                        {"granularity": "hour", "since": iso(week), "language": "de"}),
        "compare 12 brands, hour, 7 days": lambda b: ("/api/compare", {
            "brands": ",".join([b, *(f"brand{i}" for i in range(11))]), "granularity": "hour", "since": iso(week)}),
        "languages, hour, 30 days": lambda b: (f"/api/brands/{b}/languages",
                                               {"granularity": "hour", "since": iso(month)}),
        "sources, 30 days": lambda b: (f"/api/brands/{b}/sources", {"since": iso(month)}),
        "posts page, 7 days": lambda b: (f"/api/brands/{b}/posts/page", {"since": iso(week), "limit": 12}),
        "posts page, negative, de, 30 days": lambda b: (f"/api/brands/{b}/posts/page", {
            "since": iso(month), "label": "negative", "language": "de", "limit": 12}),
        "posts search, 1 year": lambda b: (f"/api/brands/{b}/posts/page",
                                           {"since": iso(year), "q": "battery -refund", "limit": 12}),
        "keyphrases hour, 7 days": lambda b: (f"/api/brands/{b}/keyphrases",
                                              {"granularity": "hour", "since": iso(week), "top": 6}),
        "keyphrases day, 1 year": lambda b: (f"/api/brands/{b}/keyphrases",
                                             {"granularity": "day", "since": iso(year), "top": 6}),
        "alerts": lambda b: ("/api/alerts", {"brand": b, "since": iso(week)}),
        "models": lambda b: ("/api/models", {}),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def measure(settings: Settings, brands: int, requests: int, seed: int = 7) -> dict:
    from monitor.api.app import create_app

    rng = random.Random(seed)
    app = create_app(settings, run_alerts=False)
    results = {}
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://b") as client:
        for name, request in progress_bar(list(views(datetime.now(UTC)).items()), desc="views", unit="view"):
            latencies = []
            for i in range(requests + 2):
                brand = "brand0" if i % 3 == 0 else f"brand{rng.randrange(brands)}"  # the largest, then others
                path, params = request(brand)
                began = time.perf_counter()
                response = await client.get(path, params=params)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"{name}: HTTP {response.status_code} {response.text[:300]}")
                if i >= 2:  # two warm-ups: connections, plans, Redis's hot series
                    latencies.append(elapsed)
            results[name] = {"p50_ms": round(statistics.median(latencies), 1),
                             "p95_ms": round(percentile(latencies, 0.95), 1), "max_ms": round(max(latencies), 1),
                             "requests": len(latencies)}
    return results


def _stored_posts(url: str) -> int:
    """Posts a kept store already has (a run with `keep` adds only the missing ones and derived tables)."""
    async def count() -> int:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT count(*) FROM post_sentiment"))).scalar_one()
        finally:
            await engine.dispose()

    return asyncio.run(count())


def run_query_benchmark(database_url: str | None, posts: int = 10_000_000, brands: int = 50, days: int = 365,
                        requests: int = 40, out: Path | None = None, keep: bool = False) -> dict:
    """Generate the store, measure every view; write the JSON report to `out` when given. With `keep`, the store
    stays in DATABASE_URL's `bench_queries` schema, and a later run with `keep` measures it again (after upgrading
    its schema) instead of generating it anew."""
    from monitor.devstack.embedded.redis import redis_server

    host = host_info()
    redis = redis_server(Path(tempfile.mkdtemp(prefix="bench-queries-redis-")))
    redis.start()
    try:
        with private_schema(database_url, SCHEMA, keep) as (url, embedded):
            upgrade_head(url)
            reused = keep and _stored_posts(url) >= posts
            generated = {**generate(url, posts, brands, days), "reused": reused}
            settings = Settings().replace(database_url=url, redis_url=f"redis://127.0.0.1:{redis.port}/0",
                                          API_READ_TOKEN=None, API_ADMIN_TOKEN=None)
            measured = asyncio.run(measure(settings, brands, requests))
    finally:
        redis.stop()
    worst = max(measured.values(), key=lambda m: m["p95_ms"])
    report = {
        "benchmark": "dashboard API requests over a generated store (p50/p95 per view)",
        "command": f"monitor bench queries --posts {posts} --brands {brands} --days {days} --requests {requests}"
                   + (" --keep" if keep else ""),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(),
        "host": host,
        "embedded_postgres": embedded,
        "generated": generated,
        "views": measured,
        "worst_p95_ms": worst["p95_ms"],
        "target_p95_ms": 200,
    }
    write_report(report, out)
    log.info("query benchmark done", worst_p95_ms=worst["p95_ms"])
    return report
