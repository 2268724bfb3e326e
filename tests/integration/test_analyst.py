"""The analyst surface: documented views, read-only SQL, `monitor trends`/`monitor sql` and records for pandas."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from monitor.sink.writer import write_results
from monitor.store.analytics import (
    QueryError,
    analyst_url,
    daily_sentiment,
    net_sentiment,
    readonly_query,
    share_of_voice,
    trend_records,
)
from monitor.store.db import create_engine
from tests.integration.cli_helpers import monitor
from tests.integration.trend_helpers import result

pytestmark = pytest.mark.integration
DAY = datetime(2025, 2, 3, 10, 0, tzinfo=UTC)  # a day no other test writes


@pytest.fixture(scope="module")
async def analyst_data(engine):
    labels = {"sova": ["positive"] * 6 + ["negative"] * 2 + ["neutral"] * 2, "sovb": ["negative"] * 3 + ["neutral"]}
    results = [result(f"sov-{brand}-{i}", [brand], DAY + timedelta(minutes=i), label)
               for brand, brand_labels in labels.items() for i, label in enumerate(brand_labels)]
    await write_results(engine, results)
    return engine


@pytest.fixture(scope="module")
async def reader(analyst_data, settings):
    """What `monitor sql` uses: the suite's DATABASE_URL logged in as monitor_reader."""
    engine = create_engine(analyst_url(settings.store.database_url))
    yield engine
    await engine.dispose()


async def test_daily_views_for_analysts(analyst_data):
    engine = analyst_data
    (row,) = await daily_sentiment(engine, "sova", since=date(2025, 2, 3), until=date(2025, 2, 4))
    assert row == {"brand": "sova", "day": date(2025, 2, 3), "negative": 2, "neutral": 2, "positive": 6,
                   "volume": 10, "mean_polarity": pytest.approx(0.7 * 4 / 10), "net_sentiment": pytest.approx(0.4)}
    shares = {r["brand"]: r for r in await share_of_voice(engine, since=date(2025, 2, 3), until=date(2025, 2, 4))}
    assert set(shares) == {"sova", "sovb"}
    assert shares["sova"]["share_of_voice"] == pytest.approx(10 / 14)
    assert shares["sovb"]["total_volume"] == 14
    (net,) = await net_sentiment(engine, "sovb", "day", since=DAY - timedelta(hours=10))
    assert net["net_sentiment"] == pytest.approx(-3 / 4)


async def test_records_are_plain_types_for_pandas(analyst_data):
    records = await trend_records(analyst_data, "sova", "hour", since=DAY - timedelta(hours=1), until=DAY + timedelta(
        hours=1))
    assert len(records) == 1
    assert {type(v) for v in records[0].values()} <= {str, int, float, datetime}
    assert records[0]["volume"] == 10 and records[0]["net_sentiment"] == pytest.approx(0.4)


async def test_readonly_sql_reads_views_and_refuses_writes(reader):
    analyst_data = reader
    columns, rows = await readonly_query(
        analyst_data, "SELECT brand, day::text AS day, volume FROM daily_brand_sentiment "
                      "WHERE brand LIKE 'sov%' AND day = '2025-02-03' ORDER BY brand")
    assert columns == ["brand", "day", "volume"]
    assert rows == [("sova", "2025-02-03", 10), ("sovb", "2025-02-03", 4)]
    with pytest.raises(QueryError, match="read-only"):
        await readonly_query(analyst_data, "DELETE FROM trend_bucket")
    with pytest.raises(QueryError, match="multiple commands"):  # no escaping the transaction
        await readonly_query(analyst_data, "SELECT 1; COMMIT; DELETE FROM trend_bucket")
    columns, rows = await readonly_query(analyst_data, "SELECT count(*) AS n FROM trend_bucket WHERE brand = 'sova'")
    assert rows[0][0] > 0


async def test_readonly_sql_refuses_a_superuser_connection(analyst_data):
    async with analyst_data.connect() as conn:  # the suite's own connection is a superuser's
        assert (await conn.execute(text("SELECT current_setting('is_superuser')"))).scalar_one() == "on"
    with pytest.raises(QueryError, match="superuser"):
        await readonly_query(analyst_data, "SELECT 1")


@pytest.mark.parametrize("sql", [
    "COPY (SELECT 1) TO PROGRAM 'true'",               # runs a shell command as the server's OS user
    "SELECT pg_read_file('/etc/hostname')",            # reads server files
    "SELECT * FROM pg_ls_dir('.')",
    "SELECT set_config('role', 'postgres', true)",
    "DO $x$ BEGIN PERFORM set_config('session_authorization', 'postgres', true); END $x$",
])
async def test_readonly_sql_cannot_reach_the_server_or_escalate(reader, sql):
    with pytest.raises(QueryError, match="permission denied|must be superuser|read-only|not allowed"):
        await readonly_query(reader, sql)


def test_monitor_trends_cli_formats(stack, analyst_data):
    args = ["trends", "--brand", "sova", "--granularity", "day", "--since", "2025-02-03", "--until", "2025-02-04"]
    as_csv = monitor(stack, *args, "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    (row,) = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert (row["brand"], row["bucket_start"], row["volume"]) == ("sova", "2025-02-03T00:00:00+00:00", "10")
    (record,) = json.loads(monitor(stack, *args, "--format", "json").stdout)
    assert record["positive"] == 6 and record["net_sentiment"] == pytest.approx(0.4)
    table = monitor(stack, *args).stdout.splitlines()
    assert table[0].split()[:3] == ["brand", "granularity", "bucket_start"] and table[2].startswith("sova")


def test_monitor_trends_refuses_minutes_older_than_their_retention(stack, analyst_data):
    args = ["trends", "--brand", "sova", "--granularity", "minute", "--since", "2025-02-03"]
    refused = monitor(stack, *args)
    kept_forever = monitor(stack, *args, env={"RETENTION_MINUTE_BUCKETS_DAYS": "0"})
    assert refused.returncode == 2 and "minute buckets are kept for 60 days" in refused.stderr
    assert kept_forever.returncode == 0, kept_forever.stderr
    assert "sova" in kept_forever.stdout


def test_monitor_sql_cli(stack, analyst_data):
    query = "SELECT brand, share_of_voice FROM daily_share_of_voice WHERE day = '2025-02-03' ORDER BY brand"
    done = monitor(stack, "sql", query, "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "brand,share_of_voice"
    assert done.stdout.splitlines()[1].startswith("sova,0.714")
    refused = monitor(stack, "sql", "UPDATE trend_bucket SET positive = 0")
    assert refused.returncode != 0 and "read-only" in refused.stderr
