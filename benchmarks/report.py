"""What every benchmark report carries: the host, the device in words, and where the JSON goes."""

from __future__ import annotations

import json
import os
import platform
import socket
import urllib.request
from collections.abc import Iterable
from pathlib import Path

import torch
from prometheus_client.parser import text_string_to_metric_families

from core.logging import get_logger

log = get_logger(__name__)


def host_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        models = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                  if ln.startswith("model name")]
        cpu = models[0] if models else cpu
    except OSError:
        pass
    return {"hostname": socket.gethostname(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "load_avg_1m_before": round(os.getloadavg()[0], 2), "platform": platform.platform(),
            "python": platform.python_version()}


def device_name(device: torch.device | None = None) -> str:
    """'NVIDIA H100 80GB HBM3 (cuda:0)' or 'CPU only: <model> x<cores> on <host>'."""
    if device is not None and device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    host = host_info()
    return f"CPU only: {host['cpu']} x{host['cpu_count']} on {host['hostname']}"


def settings_from_environment() -> dict[str, str]:
    """The monitor's settings this run took from the environment (e.g. `CONSUMER_FETCH_MIN_BYTES=65536 monitor
    bench e2e`), so a report says what it measured; URLs and tokens are left out, as they may hold secrets."""
    from core.settings import FLAT_NAMES

    return {name: value for name, value in sorted(os.environ.items()) if name.lower() in FLAT_NAMES
            and not name.endswith(("_URL", "_TOKEN", "_BOOTSTRAP"))}


def write_report(report: dict, out: Path | None) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    report = {**report, "settings_from_environment": settings_from_environment()}
    out.write_text(json.dumps(report, indent=2) + "\n")
    log.info("benchmark report written", path=str(out))


STAGES = {
    "worker_queue_wait": "monitor_worker_queue_wait_seconds",
    "worker_decode": "monitor_worker_decode_seconds",
    "worker_model": "monitor_worker_model_seconds",
    "worker_delivery": "monitor_worker_delivery_seconds",
    "sink_queue_wait": "monitor_sink_queue_wait_seconds",
    "sink_write": "monitor_sink_write_seconds",
}
"""Where a post's time goes, from the processes' own histograms (queue waits are per post, the rest per batch)."""


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
"""(sample name, sorted labels) -> value, summed over processes: what `scrape` returns."""


def scrape(ports: Iterable[int]) -> Samples:
    """Every sample of the /metrics of the processes on `ports`, summed over the processes."""
    samples: Samples = {}
    for port in ports:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            for family in text_string_to_metric_families(response.read().decode()):
                for sample in family.samples:
                    key = (sample.name, tuple(sorted(sample.labels.items())))
                    samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def stage_means(scraped: Samples) -> dict[str, float | None]:
    """Mean seconds per stage from the processes' `scrape`d histograms (a stage whose process was not scraped
    is None)."""
    samples = {name: value for (name, labels), value in scraped.items() if not labels}
    return {stage: round(samples[f"{metric}_sum"] / samples[f"{metric}_count"], 4)
            if samples.get(f"{metric}_count") else None for stage, metric in STAGES.items()}


def counts(scraped: Samples, metric: str, label: str) -> dict[str, int]:
    """A labelled counter's totals by one label, from `scrape`d samples (`metric` without `_total`)."""
    return {dict(labels)[label]: int(value) for (name, labels), value in scraped.items()
            if name == f"{metric}_total" and label in dict(labels)}


def pipeline_stage_ms(scraped: Samples, posts: int) -> dict[str, dict[str, float]]:
    """Milliseconds per post each worker pipeline stage spent busy and blocked (`monitor_worker_stage_seconds`):
    the stage with the most busy time per post bounds the worker's rate."""
    stages: dict[str, dict[str, float]] = {}
    for (name, labels), value in scraped.items():
        if name == "monitor_worker_stage_seconds_total":
            label = dict(labels)
            stages.setdefault(label["stage"], {})[label["state"]] = round(value * 1000 / max(1, posts), 3)
    return stages
