"""Sizing from measured worker benchmarks: how many replicas, CPU cores or GPUs, and partitions a target rate needs.

Every figure comes from a `monitor bench worker` report: its posts/s per worker host, and the CPU time per post it
measured for the worker's pipeline and model processes. Posts/s per core is what those CPU times allow on a host
where nothing else competes; the posts/s the report saw is what the benchmarked host really did, contention and
all. A plan takes the smaller of the two per replica, so it never promises more than was seen.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MeasuredWorker:
    """One runtime of one worker benchmark report."""

    source: str
    model: str
    runtime: str
    device: str
    host_cores: int
    concurrency: int
    posts_per_s: float
    cpu_ms_per_post: float
    """Worker pipeline + model processes (the broker is sized apart)."""

    @property
    def gpu(self) -> bool:
        return "cuda" in self.device

    @property
    def posts_per_core_s(self) -> float:
        """What one fully busy core does at the measured CPU time per post."""
        return 1000.0 / self.cpu_ms_per_post if self.cpu_ms_per_post else math.inf


def measured_workers(report_path: Path) -> list[MeasuredWorker]:
    """Each runtime a `monitor bench worker` report measured (one when it compared none)."""
    report = json.loads(report_path.read_text())
    if not str(report.get("benchmark", "")).startswith("worker posts/s"):
        raise ValueError(f"{report_path} is not a `monitor bench worker` report")
    runs = report.get("runtimes") or {report["model"].get("runtime", "torch"): {
        "worker_posts_per_s": report["worker"]["posts_per_s"], "cpu_ms_per_post": report["worker"]["cpu_ms_per_post"]}}
    return [MeasuredWorker(
        source=report_path.name, model=report["model"]["name"], runtime=runtime, device=report["device"],
        host_cores=int(report["host"]["cpu_count"]), concurrency=int(report["worker"]["concurrency"]),
        posts_per_s=float(run["worker_posts_per_s"]),
        cpu_ms_per_post=float(run["cpu_ms_per_post"]["pipeline"] + run["cpu_ms_per_post"]["model"]))
        for runtime, run in runs.items()]


@dataclass(frozen=True)
class Plan:
    measured: MeasuredWorker
    target_posts_per_s: float
    headroom: float
    replicas: int
    """Worker hosts (GPU) or worker pods of `cores_per_replica` cores (CPU), each running the measured number of
    worker processes."""
    cores_per_replica: int
    partitions: int

    @property
    def per_replica_posts_per_s(self) -> float:
        return self.target_posts_per_s * self.headroom / self.replicas


def plan(measured: MeasuredWorker, target_posts_per_s: float, headroom: float = 1.5,
         cores_per_replica: int | None = None) -> Plan:
    """Replicas for `target_posts_per_s` x `headroom`, and partitions to spread them: a partition feeds one worker
    process at a time, so the posts topic needs at least replicas x worker processes per replica (the measured
    `--concurrency`) partitions, and KEDA's maxReplicaCount should be no higher than partitions / processes. GPU
    replicas are hosts like the measured one; CPU replicas default to its core count."""
    needed = target_posts_per_s * headroom
    if measured.gpu:
        cores, per_replica = measured.host_cores, measured.posts_per_s
    else:
        cores = cores_per_replica or measured.host_cores
        per_replica = min(measured.posts_per_core_s * cores, measured.posts_per_s * cores / measured.host_cores)
    replicas = max(1, math.ceil(needed / per_replica))
    return Plan(measured, target_posts_per_s, headroom, replicas, cores, partitions=replicas * measured.concurrency)


def plan_table(plans: list[Plan]) -> str:
    """Markdown, one row per plan."""
    lines = ["| report | model, runtime | device | measured posts/s (host) | posts/s per core | replicas | "
             "cores each | processes each | partitions |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in plans:
        m = p.measured
        per_core = "-" if m.gpu else f"{m.posts_per_core_s:,.0f}"
        lines.append(f"| {m.source} | {m.model}, {m.runtime} | {m.device} | {m.posts_per_s:,.1f} ({m.host_cores} "
                     f"cores) | {per_core} | {p.replicas} | {p.cores_per_replica} | {m.concurrency} | {p.partitions} |")
    return "\n".join(lines)
