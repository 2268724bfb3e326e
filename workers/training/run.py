"""What `monitor train` and `monitor eval` do, as plain functions (the click commands only parse options)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from core.logging import get_logger
from workers.inference.model import resolve_device
from workers.radm import RADM, RADMConfig
from workers.radm.processor import RADMProcessor
from workers.training.artifacts import command_line, write_json
from workers.training.datasets import load_dataset
from workers.training.examples import DatasetSplits
from workers.training.metrics import save_confusion_png
from workers.training.sources import BatchSource, make_source
from workers.training.trainer import Trainer, TrainSettings, evaluate

log = get_logger(__name__)

PRESETS = ("tiny", "bootstrap", "full")


def build_config(preset: str, labels: tuple[str, ...], **overrides: Any) -> RADMConfig:
    """A preset sized for the data set's label set; `overrides` are RADMConfig fields (None = keep)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown config {preset!r}: use one of {PRESETS}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return getattr(RADMConfig, preset)(num_labels=len(labels), labels=labels, **changes)


@dataclass
class Sources:
    train: BatchSource
    val: BatchSource


def _check_labels(model: RADM, data: DatasetSplits) -> None:
    if tuple(model.config.labels) != tuple(data.labels):
        raise ValueError(f"checkpoint labels {list(model.config.labels)} differ from the data set's "
                         f"{list(data.labels)}")


def split_report(model: RADM, data: DatasetSplits, split: str, out: Path, device: torch.device,
                cache: bool | None = None) -> dict[str, Any]:
    """Metrics of `model` on one split, plus `confusion_<split>.png` in `out`."""
    _check_labels(model, data)
    processor = RADMProcessor(model.config)
    source = make_source(model, processor, data.split(split), device, cache, desc=split)
    metrics = evaluate(model, source, device, desc=split)
    save_confusion_png(metrics["confusion_matrix"], data.labels, out / f"confusion_{split}.png",
                       title=f"{data.name} {split} (n={metrics['examples']})")
    return metrics


def train_run(dataset: str, data_path: Path | None, preset: str, out: Path, settings: TrainSettings, *,
              task: str = "sentiment", resume: bool = False, device: str = "auto", cache: bool | None = None,
              dropout: float | None = None, optuna_trials: int = 0, seed: int = 42) -> dict[str, Any]:
    """Load data, build (or resume) the model, train, evaluate the best epoch on test; returns metrics.json."""
    started = time.perf_counter()
    target = resolve_device(device)
    data = load_dataset(dataset, data_path, task, seed)
    state_file = out / "last.pt"
    if resume and state_file.is_file():
        config = RADMConfig.from_dict(torch.load(state_file, map_location="cpu", weights_only=True)["config"])
    else:
        config = build_config(preset, data.labels, dropout=dropout)
    torch.manual_seed(settings.seed)
    model = RADM(config)
    processor = RADMProcessor(config)
    sources = Sources(make_source(model, processor, data.train, target, cache, desc="train"),
                      make_source(model, processor, data.val, target, cache, desc="val"))
    search: dict[str, Any] | None = None
    if optuna_trials > 0:
        from workers.training.search import run_search

        search = run_search(optuna_trials, config, settings, sources.train, sources.val, out, target)
        result_best_epoch, history = search["best_epoch"], search["history"]
    else:
        result = Trainer(model, settings, out, target).fit(sources.train, sources.val, resume=resume)
        result_best_epoch, history = result.best_epoch, result.history
    best = RADM.load(out / "best.pt").to(target)
    val_metrics = evaluate(best, sources.val, target, desc="val")
    test_metrics = split_report(best, data, "test", out, target, cache)
    report = {
        "command": command_line(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1), "device": str(target),
        "data": data.summary(), "config": best.config.to_dict(), "settings": settings.to_dict(),
        "best_epoch": result_best_epoch, "history": history, "val": val_metrics, "test": test_metrics,
        "optuna": search,
    }
    write_json(out / "metrics.json", report)
    return report


def eval_run(checkpoint: Path, dataset: str, data_path: Path | None, split: str, out: Path, *,
             task: str = "sentiment", device: str = "auto", cache: bool | None = None,
             seed: int = 42) -> dict[str, Any]:
    """Metrics of a saved checkpoint on one split: `metrics_<split>.json` and `confusion_<split>.png` in `out`."""
    started = time.perf_counter()
    target = resolve_device(device)
    data = load_dataset(dataset, data_path, task, seed)
    model = RADM.load(checkpoint).to(target)
    metrics = split_report(model, data, split, out, target, cache)
    report = {"command": command_line(), "date": datetime.now(UTC).isoformat(timespec="seconds"),
              "checkpoint": str(checkpoint), "split": split, "data": data.summary(),
              "seconds": round(time.perf_counter() - started, 1), **metrics}
    write_json(out / f"metrics_{split}.json", report)
    return report
