"""Trends per language without a database: the bucket key the upserts conflict on, the API's declared `language`
parameters and languages endpoint, and the CLI's check of `--language`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.dialects import postgresql

from core.settings import Settings
from monitor.api.app import create_app
from monitor.cli.main import main
from monitor.sink.writer import BATCH_STATEMENT
from monitor.sink.writer import BUCKET_LOCK_STATEMENT as RESULT_LOCKS
from monitor.store.db import BUCKET_KEY, trend_bucket
from monitor.store.deletions import BUCKET_LOCK_STATEMENT as DELETION_LOCKS
from monitor.store.languages import LanguageVolume

LANGUAGE_PATTERN = "^[a-z]{2}$|^und$"


def sql(statement) -> str:
    return " ".join(str(statement.compile(dialect=postgresql.dialect())).split())


def test_the_upsert_conflicts_on_the_primary_key_with_the_language_in_it():
    assert tuple(c.name for c in trend_bucket.primary_key.columns) == BUCKET_KEY
    assert f"ON CONFLICT ({', '.join(BUCKET_KEY)}) DO UPDATE" in sql(BATCH_STATEMENT)


@pytest.mark.parametrize("statement", [RESULT_LOCKS, DELETION_LOCKS], ids=["results", "deletions"])
def test_bucket_locks_cover_supported_rows_only_in_hash_order(statement):
    text = sql(statement)
    assert "pg_advisory_xact_lock" in text and "ORDER BY h" in text
    assert "WHERE per_brand.language_supported" in text


@pytest.fixture(scope="module")
def spec() -> dict:
    return create_app(Settings(), run_alerts=False).openapi()


@pytest.mark.parametrize("path", ["/api/brands/{brand}/trends", "/api/compare", "/api/brands/{brand}/posts"])
def test_the_read_endpoints_take_a_bounded_language(spec, path):
    [language] = [p for p in spec["paths"][path]["get"]["parameters"] if p["name"] == "language"]
    assert not language.get("required")
    assert {s.get("pattern") for s in language["schema"]["anyOf"]} >= {LANGUAGE_PATTERN}


def test_the_languages_endpoint_is_declared_with_its_errors(spec):
    operation = spec["paths"]["/api/brands/{brand}/languages"]["get"]
    assert {"200", "401", "403", "404", "422", "500"} <= set(operation["responses"])
    body = spec["components"]["schemas"]["LanguageBreakdown"]["properties"]
    assert {"total_volume", "unsupported_volume", "languages"} <= set(body)
    assert "language_supported" in spec["components"]["schemas"]["TrendSeries"]["properties"]


def test_a_language_volume_adds_up_its_labels():
    assert LanguageVolume("de", False, negative=2, neutral=1, positive=3).volume == 6


@pytest.mark.parametrize("value", ["german", "DE", "d", "und1"])
def test_monitor_trends_refuses_a_malformed_language_before_reading(value):
    done = CliRunner().invoke(main, ["trends", "--language", value])
    assert done.exit_code == 2 and "--language" in done.output
