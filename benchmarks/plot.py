"""One PNG of every benchmark report in a results folder: what the README shows next to its tables."""

from __future__ import annotations

import json
from pathlib import Path

from core.logging import get_logger

log = get_logger(__name__)


def _load(folder: Path, pattern: str) -> list[dict]:
    return [json.loads(path.read_text()) | {"_file": path.stem} for path in sorted(folder.glob(pattern))]


def plot_results(folder: Path = Path("bench/results"), out: Path | None = None) -> Path:
    """Model posts/s by batch size, worker vs baselines, sink paths, e2e latency percentiles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = out or folder / "summary.png"
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    model_ax, worker_ax, sink_ax, e2e_ax = axes.flat

    for report in _load(folder, "model-*.json"):
        kinds = sorted({(run.get("runtime", "torch"), run["precision"]) for run in report["runs"]})
        for runtime, precision in kinds:
            runs = [r for r in report["runs"] if (r.get("runtime", "torch"), r["precision"]) == (runtime, precision)]
            engine = "" if runtime == "torch" else " onnx"
            model_ax.plot([r["batch_size"] for r in runs], [r["posts_per_s"] for r in runs], marker="o",
                          label=f"{report['model']['version']}{' compiled' if report.get('compiled') else ''}"
                                f"{engine} {precision} ({report['device'][:28]})")
    model_ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="posts/s", title="model alone")
    model_ax.legend(fontsize=6, loc="best")

    workers = _load(folder, "worker-*.json")
    kinds = (("worker_batch_1", "worker, batch 1", "#bbb"), ("worker", "worker, micro-batched", "#3a7"),
             ("model_alone", "model alone", "#47c"))
    for offset, (key, label, color) in enumerate(kinds):
        worker_ax.bar([i * 4 + offset for i in range(len(workers))], [r[key]["posts_per_s"] for r in workers],
                      color=color, label=label)
    worker_ax.set_xticks([i * 4 + 1 for i in range(len(workers))],  # worker-<model>-<cpu|gpu>[-cN]
                         [r["_file"].removeprefix("worker-") for r in workers], fontsize=7, rotation=20, ha="right")
    worker_ax.set(yscale="log", ylabel="posts/s", title="worker: Kafka -> sentiment")
    worker_ax.legend(fontsize=7)

    for report in _load(folder, "sink-*.json"):
        sink_ax.bar(["row at a time", "batched"], [report["row_at_a_time"]["rows_per_s"],
                                                   report["batched"]["rows_per_s"]], color=["#bbb", "#3a7"])
    sink_ax.set(ylabel="rows/s", title="sink into PostgreSQL")

    for report in _load(folder, "e2e-*.json"):
        if report.get("latency_s"):
            names = ["p50", "p95", "p99", "max"]
            e2e_ax.bar(names, [report["latency_s"][n] for n in names], color="#c74")
            e2e_ax.set_title(f"end to end at {report['offered_posts_per_s']:g} posts/s offered")
    e2e_ax.set(ylabel="seconds until visible in Redis")

    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    log.info("benchmark plot written", path=str(out))
    return out
