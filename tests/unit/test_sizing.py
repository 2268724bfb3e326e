"""Sizing plans from the committed worker benchmark reports (measured figures, not made-up ones)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.sizing import measured_workers, plan, plan_table

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def test_cpu_plan_never_promises_more_than_the_host_did():
    runs = {m.runtime: m for m in measured_workers(RESULTS / "worker-bootstrap-cpu-runtimes-idle.json")}
    assert set(runs) == {"torch", "onnx-int8", "onnx-fp32"}
    int8 = runs["onnx-int8"]
    made = plan(int8, target_posts_per_s=1000, headroom=1.5)
    per_replica = min(int8.posts_per_core_s * int8.host_cores, int8.posts_per_s)
    assert made.replicas == math.ceil(1500 / per_replica)
    assert made.per_replica_posts_per_s <= int8.posts_per_s
    assert plan(runs["torch"], 1000).replicas > made.replicas  # the eager path needs more pods for the same rate
    assert plan(int8, 1000, cores_per_replica=8).replicas < made.replicas


def test_gpu_partitions_cover_every_worker_process():
    [gpu] = measured_workers(RESULTS / "worker-full-shapes-gpu-c4.json")
    assert gpu.gpu and gpu.concurrency == 4
    made = plan(gpu, target_posts_per_s=10_000, headroom=1.0)
    assert made.replicas == math.ceil(10_000 / gpu.posts_per_s)
    assert made.partitions == made.replicas * 4
    assert "full-shapes, torch" in plan_table([made])


def test_other_reports_are_refused(tmp_path):
    other = tmp_path / "sink.json"
    other.write_text((RESULTS / "sink-cpu.json").read_text())
    with pytest.raises(ValueError, match="not a `monitor bench worker` report"):
        measured_workers(other)
