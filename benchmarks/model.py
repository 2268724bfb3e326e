"""`monitor bench model`: RADM posts/s at several batch sizes against batch size 1, in one run.

The model is timed the way the worker's model process serves it (`SentimentModel.start`, `collect` and
`sentiment_results` on posts whose images are already decoded, the next batch started before the last is
collected on a GPU): tokenising, length buckets, forward passes and result objects. FLOPs per post are
counted by `torch.utils.flop_counter` on the benchmark's own post mix (text encoder + image encoder for
the posts that have an image + interaction and fusion layers), so achieved TFLOP/s and, on a GPU with a
known peak, model FLOPs utilisation (MFU) follow from the measured rate.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from benchmarks.report import device_name, host_info, write_report
from core.logging import get_logger
from schemas import Post
from workers.inference.model import Decoded, Queued, SentimentModel, sentiment_results
from workers.radm import RADM, RADMConfig

log = get_logger(__name__)

PRESETS = {"tiny": RADMConfig.tiny, "full-shapes": RADMConfig.full_shapes}
"""Random weights at real sizes; `bootstrap` (the shipped checkpoint) and `untrained` load as the worker does."""

PEAK_BF16_DENSE_FLOPS = {  # vendor datasheets, dense (no sparsity)
    "H100 SXM": 989e12, "H100 80GB HBM3": 989e12, "H100 NVL": 835e12, "H100 PCIe": 756e12, "H200": 989e12,
    "A100": 312e12, "L40S": 362e12, "L4": 121e12,
}
PEAK_FP32_FLOPS = {"H100 SXM": 67e12, "H100 80GB HBM3": 67e12, "H100 NVL": 60e12, "H100 PCIe": 51e12,
                   "H200": 67e12, "A100": 19.5e12, "L40S": 91.6e12, "L4": 30.3e12}
PRECISION_NAMES = {torch.bfloat16: "bf16", torch.float32: "fp32"}


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The GPU's datasheet peak for the precision, or None where unknown (CPUs, unlisted GPUs)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    table = PEAK_BF16_DENSE_FLOPS if dtype in (torch.bfloat16, torch.float16) else PEAK_FP32_FLOPS
    return next((peak for key, peak in table.items() if key in name), None)


def load_model(preset_or_checkpoint: str, device: str, compile: bool = False,
               dtype: torch.dtype | None = None) -> SentimentModel:
    """Anything `MODEL_CHECKPOINT` accepts, or a preset name (random weights, real sizes), in `dtype`
    (None: the device's default)."""
    if preset_or_checkpoint in PRESETS and not Path(preset_or_checkpoint).exists():
        torch.manual_seed(0)
        config = PRESETS[preset_or_checkpoint]()
        from workers.inference.model import resolve_device

        return SentimentModel(RADM(config), resolve_device(device), f"{config.version}-random", compile,
                              dtype=dtype)
    return SentimentModel.load(preset_or_checkpoint, device, compile=compile, dtype=dtype)


RUNTIMES = ("torch", "onnx-fp32", "onnx-int8")
"""`--runtimes`: eager PyTorch (at each of `--precisions`) and the ONNX export at fp32 and int8 (CPU only)."""


def checkpoint_file(preset_or_checkpoint: str) -> str:
    """A MODEL_CHECKPOINT value for an ONNX export: a preset's seeded random weights saved to a file first, so that
    the export's fingerprint (and the worker) has one to read."""
    if preset_or_checkpoint not in PRESETS or Path(preset_or_checkpoint).exists():
        return preset_or_checkpoint
    import tempfile

    path = Path(tempfile.gettempdir()) / f"bench-model-{preset_or_checkpoint}.pt"
    if not path.exists():
        load_model(preset_or_checkpoint, "cpu").save(path)
    return str(path)


def load_onnx_model(preset_or_checkpoint: str, precision: str, threads: int = 0) -> SentimentModel:
    """The ONNX export of a checkpoint or preset (exported into MODEL_ONNX_CACHE first when needed)."""
    from core.settings import ModelSettings
    from workers.inference.model import threads_for
    from workers.inference.onnx_cache import ensure_export, load_export

    cache = ModelSettings().onnx_cache
    export = ensure_export(checkpoint_file(preset_or_checkpoint), cache)
    return load_export(export, precision, threads_for(export.manifest["parameters"], threads))


def bench_posts(model: SentimentModel, count: int, image_share: float,
                max_pixels: int = 40_000_000) -> tuple[list[Post], list[Decoded]]:
    """Sample posts (224 px JPEG photos on `image_share` of them), decoded once, outside the timing."""
    from monitor.devstack.samples import sample_posts

    posts = list(sample_posts(count, seed=3, start=datetime(2026, 1, 1, tzinfo=UTC), image_share=image_share))
    return posts, [model.decode(post, max_pixels) for post in posts]


def _sync(model: SentimentModel) -> None:
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)


def nth_batch(posts: Sequence[Post], decoded: Sequence[Decoded], batch_size: int,
              i: int = 0) -> tuple[list[Post], list[Decoded]]:
    """Batch `i` of `batch_size` posts, cycling through the sample (and its decoded form) as often as needed."""
    rows = [(i * batch_size + j) % len(posts) for j in range(batch_size)]
    return [posts[r] for r in rows], [decoded[r] for r in rows]


def posts_per_s(model: SentimentModel, posts: Sequence[Post], decoded: Sequence[Decoded], batch_size: int,
                min_seconds: float = 3.0, min_posts: int = 64) -> float:
    """Score batch after batch (cycling through the posts), results included, for at least `min_seconds` and
    `min_posts`, the way a worker's model process drains a backlog (`workers.inference.child.answer`): on a GPU
    each batch is started before the one ahead of it is collected."""
    warm_up = max(1, len(posts) // batch_size)  # one pass over the posts: every length bucket, compiled or not
    for i in range(warm_up):
        model.predict(*nth_batch(posts, decoded, batch_size, i))
    _sync(model)

    def finish(batch: tuple[Sequence[Post], Queued, float]) -> None:
        batch_posts, queued, begun = batch
        sentiment_results(batch_posts, model.collect(queued).tolist(), model.labels, model.version, begun)

    done, i, started = 0, warm_up, time.perf_counter()
    ahead: tuple[Sequence[Post], Queued, float] | None = None  # on a GPU, the batch started, not collected
    while True:
        batch_posts, batch_decoded = nth_batch(posts, decoded, batch_size, i)
        begun = time.perf_counter()
        current = (batch_posts, model.start(batch_decoded), begun)
        if ahead is not None:
            finish(ahead)
            ahead = None
        if model.asynchronous:
            ahead = current
        else:
            finish(current)
        done, i = done + batch_size, i + 1
        if time.perf_counter() - started >= min_seconds and done >= min_posts:
            if ahead is not None:
                finish(ahead)
            return done / (time.perf_counter() - started)


def flops_per_post(model: SentimentModel, posts: Sequence[Post], decoded: Sequence[Decoded],
                   batch_size: int) -> float:
    """Forward FLOPs of one batch of the mix, per post (matmuls and convolutions, as FlopCounterMode counts)."""
    _, rows = nth_batch(posts, decoded, batch_size)
    batch = model.processor.encode_uint8([r[0] for r in rows], [r[1] for r in rows])
    counter = FlopCounterMode(display=False)
    with counter:
        model.probabilities(batch)
    return counter.get_total_flops() / batch_size


def profile_predict(model: SentimentModel, posts: Sequence[Post], decoded: Sequence[Decoded], batch_size: int,
                    path: Path, calls: int = 5) -> None:
    """The torch profiler's tables for `calls` predictions of one batch: where the host's time goes
    (`radm.encode`, `radm.to_device`, `radm.forward`, `radm.to_host`, `radm.results` and the operators)
    and, on a GPU, where the device's goes."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if model.device.type == "cuda" else [])
    batch = nth_batch(posts, decoded, batch_size)
    model.predict(*batch)
    _sync(model)
    with profile(activities=activities) as profiler:
        for _ in range(calls):
            model.predict(*batch)
        _sync(model)
    averages = profiler.key_averages()
    tables = [f"{calls} x predict, batch {batch_size}, {model.dtype}, {device_name(model.device)}",
              averages.table(sort_by="cpu_time_total", row_limit=30)]
    if model.device.type == "cuda":
        tables.append(averages.table(sort_by="self_device_time_total", row_limit=30))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(tables) + "\n")
    log.info("profile written", path=str(path))


def run_model_benchmark(model_name: str, device: str, batch_sizes: Sequence[int], image_share: float = 0.5,
                        min_seconds: float = 3.0, precisions: Sequence[str] = ("default",),
                        out=None, compile: bool = False, profile: Path | None = None,
                        bucket_rows: int | None = None, runtimes: Sequence[str] = ("torch",),
                        rounds: int = 1) -> dict:
    """Measure posts/s per batch size (and per precision on a GPU, per runtime on a CPU); ratios against batch
    size 1 and against eager torch. With `compile`, the first (warm-up) call of each batch size includes
    torch.compile's work; with `profile`, the profiler's tables for the first precision at the largest batch size
    go there. `bucket_rows` overrides the device's `min_bucket_rows` (0 = one forward pass per batch). Each batch
    size is measured `rounds` times per runtime, the runtimes interleaved (A, B, A, B), and the median kept, so a
    neighbour's load falls on all of them alike."""
    dtypes = {"default": None, **{name: dtype for dtype, name in PRECISION_NAMES.items()}}
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        raise ValueError(f"unknown runtimes {sorted(unknown)}; choose from {RUNTIMES}")
    models: dict[str, SentimentModel] = {}
    if "torch" in runtimes:
        models |= {precision: load_model(model_name, device, compile, dtypes[precision]) for precision in precisions}
    reference = next(iter(models.values()), None) or load_model(model_name, device)
    for runtime in runtimes:
        if runtime != "torch":
            models[runtime] = load_onnx_model(model_name, runtime.removeprefix("onnx-"), torch.get_num_threads())
    if bucket_rows is not None:
        for each in models.values():
            each.min_bucket_rows = bucket_rows
    posts, decoded = bench_posts(reference, max(256, max(batch_sizes)), image_share)
    flops = flops_per_post(reference, posts, decoded, max(batch_sizes))
    samples: dict[tuple[str, int], list[float]] = {}
    steps = [(name, b, r) for b in sorted(set([1, *batch_sizes])) for r in range(rounds) for name in models]
    for name, batch_size, _ in tqdm(steps, desc="model benchmark", unit="run"):
        samples.setdefault((name, batch_size), []).append(
            posts_per_s(models[name], posts, decoded, batch_size, min_seconds))
    runs = []
    for (name, batch_size), rates in samples.items():
        model, rate = models[name], statistics.median(rates)
        peak = peak_flops(model.device, model.dtype) if model.runtime == "torch" else None
        runs.append({
            "runtime": model.runtime,
            "precision": PRECISION_NAMES[model.dtype] if model.runtime == "torch" else model.runtime.split("-")[1],
            "batch_size": batch_size, "posts_per_s": round(rate, 1),
            **({"posts_per_s_rounds": [round(r, 1) for r in rates]} if rounds > 1 else {}),
            "achieved_tflops": round(rate * flops / 1e12, 4),
            "mfu": round(rate * flops / peak, 4) if peak else None,
        })
    baseline = {(r["runtime"], r["precision"]): r["posts_per_s"] for r in runs if r["batch_size"] == 1}
    eager = {r["batch_size"]: r["posts_per_s"] for r in runs if r["runtime"] == "torch"}  # the first precision's
    for run in runs:
        run["vs_batch_1"] = round(run["posts_per_s"] / baseline[(run["runtime"], run["precision"])], 2)
        if eager and run["runtime"] != "torch":
            run["vs_torch"] = round(run["posts_per_s"] / eager[run["batch_size"]], 2)
    report = {
        "benchmark": "RADM posts/s by batch size (SentimentModel.start/collect and results, on decoded posts)",
        "command": f"monitor bench model --model {model_name} --device {device} "
                   f"--batch-sizes {','.join(map(str, batch_sizes))} --image-share {image_share} "
                   f"--seconds {min_seconds:g} --precisions {','.join(precisions)}" + (" --compile" if compile else "")
                   + (f" --bucket-rows {bucket_rows}" if bucket_rows is not None else "")
                   + (f" --runtimes {','.join(runtimes)}" if tuple(runtimes) != ("torch",) else "")
                   + (f" --rounds {rounds}" if rounds > 1 else ""),
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": device_name(reference.device),
        "host": host_info(),
        "model": {"name": model_name, "version": reference.version, "image_size": reference.config.image_size,
                  "parameters": sum(p.numel() for p in reference.model.parameters()),
                  "gflops_per_post": round(flops / 1e9, 3)},
        "image_share": image_share,
        "torch": torch.__version__,
        "compiled": compile,
        "min_bucket_rows": reference.min_bucket_rows,
        "threads": torch.get_num_threads(),
        "load_avg_1m_after": round(os.getloadavg()[0], 2),
        "runs": runs,
    }
    write_report(report, out)
    if profile is not None:
        profile_predict(reference, posts, decoded, max(batch_sizes), profile)
    return report
