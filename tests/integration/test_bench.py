"""`monitor bench sink` on the test server, tiny: both paths agree, the report names the host, nothing is left."""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy.engine import make_url

from monitor.benchmarks.sink import SCHEMA
from tests.integration.cli_helpers import monitor

pytestmark = pytest.mark.integration


def test_bench_sink_command_reports_both_paths(stack, engine, tmp_path):
    out = tmp_path / "sink.json"
    done = monitor(stack, "bench", "sink", "--rows", "400", "--baseline-rows", "60", "--batch-size", "50",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "ratio:" in done.stdout
    report = json.loads(out.read_text())
    assert report["bucket_totals_match"] is True
    assert report["batched"]["rows"] == 400 and report["row_at_a_time"]["rows"] == 60
    assert report["batched"]["rows_per_s"] > 0 and report["ratio"] > 0
    assert report["host"]["hostname"] and report["device"].startswith("CPU")
    plain = make_url(stack.env()["DATABASE_URL"]).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:  # the private schema is gone; the real tables were never touched
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (SCHEMA,)).fetchone() is None
