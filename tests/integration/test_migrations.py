"""Alembic owns the schema: fresh databases, concurrent sinks upgrading at once, the `monitor migrate` command, and
revisions that move existing data."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy.engine import make_url

from monitor.store.db import GRANULARITIES, create_engine
from monitor.store.deletions import write_deletions
from monitor.store.migrate import current_revision, downgrade, head_revision, upgrade, upgrade_head
from monitor.store.trends import read_trends
from schemas import PostDeletion
from tests.integration.cli_helpers import monitor

pytestmark = pytest.mark.integration
OBJECTS = {"post_sentiment", "post_deletion", "trend_bucket", "tracked_brand", "trend_summary",
           "daily_brand_sentiment", "daily_share_of_voice", "net_sentiment"}


def relations(database_url: str) -> set[str]:
    with psycopg.connect(plain_url(database_url)) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return {name for (name,) in rows}


def test_concurrent_upgrades_from_several_sinks(stack, fresh_database):
    """Four processes upgrade one empty database at once: the advisory lock serialises them."""
    env = {**os.environ, **stack.env(), "DATABASE_URL": fresh_database, "LOG_LEVEL": "WARNING"}
    procs = [subprocess.Popen([sys.executable, "-m", "monitor", "migrate"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, outputs
    assert all(f"schema at revision {head_revision()}" in out for out, _err in outputs)
    assert relations(fresh_database) >= OBJECTS | {"alembic_version"}


def test_downgrade_and_upgrade_again(fresh_database):
    upgrade_head(fresh_database)
    downgrade(fresh_database, "base")
    assert current_revision(fresh_database) is None
    assert relations(fresh_database) & OBJECTS == set()
    upgrade_head(fresh_database)
    assert current_revision(fresh_database) == head_revision()


def test_monitor_migrate_command(stack, fresh_database):
    done = monitor(stack, "migrate", env={"DATABASE_URL": fresh_database})
    assert done.returncode == 0, done.stderr
    assert f"schema at revision {head_revision()}" in done.stdout
    assert relations(fresh_database) >= OBJECTS


def plain_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


AT = datetime(2026, 3, 1, 10, 15, 20, tzinfo=UTC)
POSTS_0007 = [  # post_id, brand, label, polarity, language, supported, deleted
    ("m-en", "mig", "positive", 0.7, "en", True, False),
    ("m-und", "mig", "neutral", 0.0, None, True, False),
    ("m-de", "mig", "negative", -0.7, "de", False, False),  # never counted before 0008
    ("m-gone", "mig", "positive", 0.6, "en", True, True),  # counted, then taken out (removed = 1)
    ("s-en", "migshort", "positive", 0.7, "en", True, False),
    ("s-und", "migshort", "neutral", 0.0, None, True, False),
]
BUCKETS_0007 = {  # (brand, granularity) -> negative, neutral, positive, polarity_sum, removed
    **{("mig", g): (0, 1, 2, 1.2, 1) for g in GRANULARITIES},  # m-en, m-und and one post retention pruned (0.5)
    ("migshort", "minute"): (0, 1, 0, 0.0, 0),  # pruned, then refilled by a late post: holds less than is stored
    ("migshort", "hour"): (0, 1, 1, 0.7, 0),
    ("migshort", "day"): (0, 1, 1, 0.7, 0),
}


def seed_0007(database_url: str) -> None:
    with psycopg.connect(plain_url(database_url)) as conn:
        for post_id, brand, label, polarity, language, supported, deleted in POSTS_0007:
            conn.execute(
                "INSERT INTO post_sentiment (post_id, created_at, label, p_negative, p_neutral, p_positive, polarity, "
                "brands, tagged_brands, keywords, model_version, text_excerpt, language, language_supported, "
                "deleted_at) VALUES (%s, %s, %s, 0, 0, 0, %s, %s, %s, '{}', 'test', '', %s, %s, %s)",
                (post_id, AT, label, polarity, [brand], [brand], language, supported, AT if deleted else None))
        for (brand, granularity), (negative, neutral, positive, polarity_sum, removed) in BUCKETS_0007.items():
            conn.execute(
                "INSERT INTO trend_bucket (brand, granularity, bucket_start, negative, neutral, positive, "
                "polarity_sum, removed) VALUES (%s, %s, date_trunc(%s, %s::timestamptz, 'UTC'), %s, %s, %s, %s, %s)",
                (brand, granularity, granularity, AT, negative, neutral, positive, polarity_sum, removed))


def bucket_rows(database_url: str, brand: str, granularity: str, key: tuple[str, ...] = ("language",
                                                                                    "language_supported")) -> dict:
    """Counts per `key` (the columns of it that exist at the database's revision), summed over the others."""
    with psycopg.connect(plain_url(database_url)) as conn:
        columns = ", ".join(c for c in key if c in trend_columns(conn))
        rows = conn.execute(f"SELECT {columns + ', ' if columns else ''}sum(negative)::int, sum(neutral)::int, "
                            "sum(positive)::int, round(sum(polarity_sum)::numeric, 6)::float8, sum(removed)::int "
                            "FROM trend_bucket WHERE brand = %s AND granularity = %s "
                            f"{'GROUP BY ' + columns if columns else ''}", (brand, granularity)).fetchall()
    width = len(columns.split(", ")) if columns else 0
    return {tuple(r[:width]): tuple(r[width:]) for r in rows if r[width:] != (0, 0, 0, 0.0, 0)}


def trend_columns(conn) -> set[str]:
    rows = conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'trend_bucket'")
    return {name for (name,) in rows}


def summary(database_url: str, brand: str) -> list[tuple]:
    with psycopg.connect(plain_url(database_url)) as conn:
        return conn.execute("SELECT granularity, negative, neutral, positive, volume, round(mean_polarity::numeric, 6) "
                            "FROM trend_summary WHERE brand = %s ORDER BY granularity", (brand,)).fetchall()


async def test_upgrade_from_0007_splits_buckets_by_language_and_deletions_stay_exact(fresh_database):
    upgrade(fresh_database, "0007")
    seed_0007(fresh_database)
    before = summary(fresh_database, "mig")
    upgrade_head(fresh_database)

    assert summary(fresh_database, "mig") == before  # the default figures read as they did
    for granularity in GRANULARITIES:
        assert bucket_rows(fresh_database, "mig", granularity) == {
            ("und", True): (0, 1, 1, 0.5, 1),  # the pruned post's share and the unknown-language post
            ("en", True): (0, 0, 1, 0.7, 0),  # the stored English post, in its own row
            ("de", False): (1, 0, 0, -0.7, 0)}  # the unsupported post, counted now
    assert bucket_rows(fresh_database, "migshort", "minute") == {("und", True): (0, 1, 0, 0.0, 0)}  # left whole
    assert bucket_rows(fresh_database, "migshort", "hour") == {("und", True): (0, 1, 0, 0.0, 0),
                                                               ("en", True): (0, 0, 1, 0.7, 0)}

    engine = create_engine(fresh_database)
    try:
        applied = await write_deletions(engine, [PostDeletion(post_id="m-en", deleted_at=AT, source="test")])
        assert {(b.negative, b.neutral, b.positive, b.removed) for b in applied.buckets} == {(0, 1, 1, 2)}
        assert [(b.volume, b.removed) for b in await read_trends(engine, "mig", "hour")] == [(2, 2)]
        assert [(b.volume, b.removed) for b in await read_trends(engine, "mig", "hour", language="en")] == [(0, 1)]
    finally:
        await engine.dispose()

    downgrade(fresh_database, "0007")  # supported rows fold back into one per bucket; unsupported ones go
    assert bucket_rows(fresh_database, "mig", "day") == {(): (0, 1, 1, 0.5, 2)}
    assert bucket_rows(fresh_database, "migshort", "hour") == {(): (0, 1, 1, 0.7, 0)}


async def test_upgrade_to_0010_moves_stored_posts_into_their_models_rows(fresh_database):
    """Buckets counted before 0010 become 'unrecorded'; stored posts' shares move to their model's rows, so a
    deletion subtracts from the row its post is in, and one model's series reads its posts only."""
    upgrade(fresh_database, "0007")
    seed_0007(fresh_database)
    upgrade(fresh_database, "0009")
    before = summary(fresh_database, "mig")
    upgrade_head(fresh_database)
    assert summary(fresh_database, "mig") == before
    by_model = ("language", "language_supported", "model_version")
    for granularity in GRANULARITIES:
        assert bucket_rows(fresh_database, "mig", granularity, by_model) == {
            ("und", True, "unrecorded"): (0, 0, 1, 0.5, 1),  # what retention pruned stays unrecorded
            ("und", True, "test"): (0, 1, 0, 0.0, 0),
            ("en", True, "test"): (0, 0, 1, 0.7, 0),
            ("de", False, "test"): (1, 0, 0, -0.7, 0)}
    engine = create_engine(fresh_database)
    try:
        assert [b.volume for b in await read_trends(engine, "mig", "day", model="test")] == [2]
        await write_deletions(engine, [PostDeletion(post_id="m-en", deleted_at=AT, source="test")])
        assert bucket_rows(fresh_database, "mig", "day", by_model)[("en", True, "test")] == (0, 0, 0, 0.0, 1)
        assert [(b.volume, b.removed) for b in await read_trends(engine, "mig", "day")] == [(2, 2)]
    finally:
        await engine.dispose()
    downgrade(fresh_database, "0009")
    assert bucket_rows(fresh_database, "mig", "day") == {("und", True): (0, 1, 1, 0.5, 1),
                                                         ("en", True): (0, 0, 0, 0.0, 1),
                                                         ("de", False): (1, 0, 0, -0.7, 0)}


def seed_0012(database_url: str) -> None:
    """Posts stored a week apart, a thumbnail, a re-score and a keyphrase record, as 0012 keeps them."""
    with psycopg.connect(plain_url(database_url)) as conn:
        for post_id, processed_at in (("w-1", AT), ("w-2", AT + timedelta(days=7))):
            conn.execute(
                "INSERT INTO post_sentiment (post_id, created_at, processed_at, label, p_negative, p_neutral, "
                "p_positive, polarity, brands, tagged_brands, keywords, model_version, text_excerpt, language, "
                "language_supported) VALUES (%s, %s, %s, 'positive', 0, 0, 1, 1, '{wk}', '{wk}', '{}', 'test', "
                "'text', 'en', true)", (post_id, AT, processed_at))
        conn.execute("INSERT INTO post_thumbnail (post_id, jpeg) VALUES ('w-1', '\\xffd8'::bytea)")
        conn.execute("INSERT INTO post_rescore (post_id, model_version, created_at, label, p_negative, p_neutral, "
                     "p_positive, polarity, brands, language, language_supported) VALUES ('w-2', 'other', %s, "
                     "'negative', 1, 0, 0, -1, '{wk}', 'en', true)", (AT,))
        conn.execute("INSERT INTO keyphrase_post (post_id, created_at, label, brands, terms, source) VALUES "
                     "('w-1', %s, 'positive', '{wk}', '{text}', 'file')", (AT,))


def per_post_rows(database_url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(plain_url(database_url)) as conn:
        thumbnails = ("SELECT post_id, thumbnail FROM post_sentiment" if "thumbnail" in {
            name for (name,) in conn.execute("SELECT column_name FROM information_schema.columns "
                                             "WHERE table_name = 'post_sentiment'")}
                      else "SELECT p.post_id, t.jpeg FROM post_sentiment p LEFT JOIN post_thumbnail t USING (post_id)")
        return {"posts": conn.execute("SELECT post_id, processed_at FROM post_sentiment ORDER BY 1").fetchall(),
                "thumbnails": conn.execute(thumbnails + " ORDER BY 1").fetchall(),
                "rescores": conn.execute("SELECT post_id, model_version FROM post_rescore").fetchall(),
                "keyphrases": conn.execute("SELECT post_id, terms FROM keyphrase_post").fetchall()}


def test_0013_partitions_the_per_post_rows_and_downgrades_back(fresh_database):
    upgrade(fresh_database, "0012")
    seed_0012(fresh_database)
    before = per_post_rows(fresh_database)
    upgrade_head(fresh_database)
    assert per_post_rows(fresh_database) == before
    with psycopg.connect(plain_url(fresh_database)) as conn:
        weeks = conn.execute("SELECT p.post_id, p.tableoid::regclass::text, r.tableoid::regclass::text FROM "
                             "post_sentiment p LEFT JOIN post_rescore r USING (post_id) ORDER BY 1").fetchall()
    assert weeks == [("w-1", "post_sentiment_p20260223", None),
                     ("w-2", "post_sentiment_p20260302", "post_rescore_p20260302")]
    downgrade(fresh_database, "0012")
    assert per_post_rows(fresh_database) == before
