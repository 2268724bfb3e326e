"""`monitor bench sink` on the test server, tiny: both paths agree, the report names the host, nothing is left."""

from __future__ import annotations

import json

import psycopg
import pytest
from sqlalchemy.engine import make_url

from benchmarks.queries import SCHEMA as QUERIES_SCHEMA
from benchmarks.sink import SCHEMA
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


def test_bench_model_reports_every_batch_size_against_batch_1(stack, tmp_path):
    out, profile = tmp_path / "model.json", tmp_path / "profile.txt"
    done = monitor(stack, "bench", "model", "--batch-sizes", "2,4", "--seconds", "0.2", "--out", str(out),
                   "--profile", str(profile))
    assert done.returncode == 0, done.stderr
    table = profile.read_text()  # the profiler's table names the model's own ranges, at the largest batch
    assert "predict, batch 4" in table and "radm.encode" in table and "radm.forward" in table
    report = json.loads(out.read_text())
    assert [run["batch_size"] for run in report["runs"]] == [1, 2, 4]
    assert report["runs"][0]["vs_batch_1"] == 1.0
    assert all(run["posts_per_s"] > 0 and run["mfu"] is None for run in report["runs"])  # no MFU without a GPU peak
    assert report["model"]["gflops_per_post"] > 0 and report["device"].startswith("CPU")


def test_bench_worker_drains_real_topics_and_compares_baselines(stack, tmp_path):
    out = tmp_path / "worker.json"
    # enough posts for the results to span several of the embedded broker's fetches: CPU is measured between two
    done = monitor(stack, "bench", "worker", "--posts", "1600", "--baseline-posts", "40", "--batch-size", "8",
                   "--concurrency", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["broker"] == "KAFKA_BOOTSTRAP"  # the test stack's broker, not a private one
    assert report["worker"]["posts"] == 1600 and report["worker_batch_1"]["posts"] == 40
    assert report["worker"]["posts_per_s"] > 0 and report["model_alone"]["posts_per_s"] > 0
    assert report["batching_speedup"] > 0 and report["pipeline_efficiency"] > 0
    worker = report["worker"]
    assert worker["concurrency"] == 2
    assert worker["mean_stage_s"]["worker_model"] > 0  # from both processes' /metrics
    # CPU per post of the worker processes and of their model processes; no broker of the benchmark's own
    assert set(worker["cpu_ms_per_post"]) == {"pipeline", "model"}
    assert worker["cpu_ms_per_post"]["pipeline"] > 0 and worker["cpu_ms_per_post"]["model"] > 0


def test_bench_worker_with_linked_images_fetches_every_one(stack, tmp_path):
    out = tmp_path / "worker-linked.json"
    done = monitor(stack, "bench", "worker", "--posts", "300", "--baseline-posts", "20", "--batch-size", "16",
                   "--image-share", "1.0", "--linked-images", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["images"].startswith("linked") and report["command"].endswith("--linked-images --image-latency-ms 0")
    assert report["worker"]["linked_images"] == {"used": 300}  # every photo fetched, decoded and scored


def test_bench_worker_that_times_out_says_what_it_knows(stack, tmp_path):
    done = monitor(stack, "bench", "worker", "--posts", "200", "--baseline-posts", "20", "--timeout-s", "0.5",
                   "--out", str(tmp_path / "worker.json"))
    assert done.returncode != 0
    assert "after 0.5s; 0 dead-lettered; the worker's log ends:" in done.stderr
    assert not (tmp_path / "worker.json").exists()


def test_bench_e2e_sees_every_post_in_redis_and_plot_draws_all_reports(stack, tmp_path):
    out = tmp_path / "e2e-cpu.json"
    done = monitor(stack, "bench", "e2e", "--rate", "20", "--seconds", "2", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["posts"] == 40 and report["never_visible"] == 0
    assert 0 < report["latency_s"]["p50"] <= report["latency_s"]["p99"] <= report["latency_s"]["max"]
    stages = report["mean_stage_s"]  # read from the worker's and the sink's own /metrics
    assert all(stages[name] > 0 for name in ("worker_queue_wait", "worker_model", "sink_queue_wait", "sink_write"))
    done = monitor(stack, "bench", "plot", "--results", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "summary.png").stat().st_size > 10_000


def test_bench_ingest_reports_the_connector_against_a_bare_reader(stack, tmp_path):
    out = tmp_path / "ingest.json"
    done = monitor(stack, "bench", "ingest", "--events", "1500", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert set(report["results"]) == {"bare reader", "connector, filters on", "connector, no filters"}
    assert report["broker"] == "KAFKA_BOOTSTRAP"  # the test stack's broker, not a private one
    for result in report["results"].values():
        assert result["events_per_s"] > 0 and result["peak_rss_mib"] > 0
    assert "0 malformed" in report["results"]["connector, filters on"]["summary"]
    assert report["ratio_to_bare_reader"]["bare reader"] == 1.0


def test_bench_queries_times_every_dashboard_view(stack, engine, tmp_path):
    out = tmp_path / "queries.json"
    done = monitor(stack, "bench", "queries", "--posts", "3000", "--brands", "12", "--days", "40", "--requests", "5",
                   "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["generated"]["rows"]["post_sentiment"] == 3000 and report["generated"]["rows"]["trend_bucket"] > 0
    assert report["views"] and all(v["requests"] == 5 and 0 < v["p50_ms"] <= v["p95_ms"] <= v["max_ms"]
                                   for v in report["views"].values())
    assert report["worst_p95_ms"] == max(v["p95_ms"] for v in report["views"].values())
    plain = make_url(stack.env()["DATABASE_URL"]).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        assert conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (QUERIES_SCHEMA,)).fetchone() is None
