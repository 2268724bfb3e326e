"""The RADM training loop: AdamW, linear warmup + decay, gradient accumulation, bf16 autocast on CUDA,
optional class-weighted loss, per-epoch checkpoints that resume exactly, validation one or more times per
epoch, early stopping on the chosen validation metric (weighted F1 by default).

Files in `out`: `last.pt` (resume state), `best.pt` (RADM.save of the best epoch), `history.json`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from core.logging import get_logger
from workers.radm import RADM
from workers.training.metrics import classification_metrics
from workers.training.sources import BatchSource

log = get_logger(__name__)

RESUME_FORMAT = "radm-train-state-1"


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation knobs; dropout lives in RADMConfig (it is part of the network)."""

    epochs: int = 10
    batch_size: int = 32
    lr: float = 2e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    patience: int = 3
    """Epochs without a better validation score (`selection`) before stopping."""
    seed: int = 42
    eval_batch_size: int = 128
    class_weighted: bool = False
    """Weight the loss by inverse class frequency in the training data, so a skewed corpus teaches no lean."""
    selection: str = "weighted_f1"
    """Validation metric that picks the best epoch: weighted_f1 (the paper's) or macro_recall (no class lean)."""
    evals_per_epoch: int = 1
    """Validate (and keep the best state) this many times per epoch: fine-tuning can peak mid-epoch."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    best_metrics: dict[str, Any]
    history: list[dict[str, Any]]
    stopped_early: bool
    seconds: float


def autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 mixed precision on CUDA only: CPU bf16 autocast is slower than fp32 on most CPUs."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def warmup_linear(total_steps: int, warmup_ratio: float):
    """LR multiplier: 0 -> 1 over the warmup steps, then linearly down to 0 at the last step."""
    warmup = max(1, round(total_steps * warmup_ratio)) if warmup_ratio > 0 else 0

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return factor


@torch.no_grad()
def predict_logits(model: nn.Module, source: BatchSource, device: torch.device, batch_size: int = 128,
                   desc: str = "eval") -> Tensor:
    """float32 logits (N, labels) for every example of `source` (model put in eval mode, restored afterwards)."""
    was_training = model.training
    model.eval()
    outputs: list[Tensor] = []
    try:
        with source.attach(model):
            for start in tqdm(range(0, len(source), batch_size), desc=desc, unit="batch", disable=None, leave=False):
                indices = range(start, min(start + batch_size, len(source)))
                with autocast(device):
                    logits = source.logits(model, indices, device)
                outputs.append(logits.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outputs) if outputs else torch.zeros(0, getattr(model.config, "num_labels", 3))


def predict(model: nn.Module, source: BatchSource, device: torch.device, batch_size: int = 128,
            desc: str = "eval") -> list[int]:
    """Arg-max labels for every example of `source`."""
    return predict_logits(model, source, device, batch_size, desc).argmax(-1).tolist()


def evaluate(model: RADM, source: BatchSource, device: torch.device, batch_size: int = 128,
             desc: str = "eval") -> dict[str, Any]:
    logits = predict_logits(model, source, device, batch_size, desc)
    probabilities = torch.softmax(logits / model.config.temperature, dim=-1)
    return classification_metrics(source.labels.tolist(), logits.argmax(-1).tolist(), model.config.labels,
                                  probabilities.tolist())


def class_weights(labels: Tensor, classes: int) -> Tensor:
    """Inverse-frequency weights normalised to mean 1 over the classes present (absent classes weigh 0)."""
    counts = torch.bincount(labels, minlength=classes).float()
    weights = torch.where(counts > 0, counts.sum() / (counts.clamp(min=1) * (counts > 0).sum()), 0.0)
    return weights


class Trainer:
    """Trains the parameters that require grad; frozen encoders stay as they are (and are not saved)."""

    def __init__(self, model: RADM, settings: TrainSettings, out: Path, device: torch.device) -> None:
        self.model = model.to(device)
        self.settings = settings
        self.out = out
        self.device = device
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        decay = [p for p in self.parameters if p.ndim >= 2]
        no_decay = [p for p in self.parameters if p.ndim < 2]  # biases, LayerNorm, gates: no weight decay
        self.optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": settings.weight_decay},
                                            {"params": no_decay, "weight_decay": 0.0}], lr=settings.lr)
        self.scheduler: torch.optim.lr_scheduler.LambdaLR | None = None
        self.start_epoch = 0
        self.best_score = -math.inf
        self.best_epoch = -1
        self.best_metrics: dict[str, Any] = {}
        self.bad_epochs = 0
        self.history: list[dict[str, Any]] = []

    # -- state ----------------------------------------------------------------------------------------------

    def _make_scheduler(self, batches_per_epoch: int) -> None:
        steps = self.settings.epochs * math.ceil(batches_per_epoch / self.settings.grad_accum)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           warmup_linear(steps, self.settings.warmup_ratio))

    def save_state(self, epoch: int) -> Path:
        path = self.out / "last.pt"
        state = {
            "format": RESUME_FORMAT, "epoch": epoch, "config": self.model.config.to_dict(),
            "settings": self.settings.to_dict(), "weights": self.model.checkpoint_state(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "best_score": self.best_score, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
            "best_metrics_json": json.dumps(self.best_metrics), "history_json": json.dumps(self.history),
        }
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(path)  # a crash mid-write must not destroy the previous resume point
        return path

    def resume(self, path: Path, batches_per_epoch: int) -> None:
        """Continue after the last finished epoch: weights, optimizer, scheduler, best score, history."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != RESUME_FORMAT:
            raise ValueError(f"{path} is not a training state (format {state.get('format')!r})")
        if state["config"] != self.model.config.to_dict():
            raise ValueError(f"{path} was written for another model config")
        result = self.model.load_state_dict(state["weights"], strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{path}: unexpected weights {result.unexpected_keys[:5]}")
        # Scheduler first: building it writes its step-0 LR into the optimizer, which the saved state then overrides.
        self._make_scheduler(batches_per_epoch)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.start_epoch = state["epoch"] + 1
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]
        self.best_metrics = json.loads(state["best_metrics_json"])
        self.history = json.loads(state["history_json"])
        log.info("resumed", path=str(path), next_epoch=self.start_epoch, best_epoch=self.best_epoch)

    # -- loop -----------------------------------------------------------------------------------------------

    def _epoch_order(self, size: int, epoch: int) -> Tensor:
        """Shuffle order from (seed, epoch) alone, so a resumed run sees the same order it would have."""
        generator = torch.Generator().manual_seed(self.settings.seed * 1000 + epoch)
        return torch.randperm(size, generator=generator)

    def _train_epoch(self, source: BatchSource, epoch: int, validate=None) -> float:
        """One pass over `source`; `validate()` runs at the `evals_per_epoch - 1` points inside the epoch."""
        settings = self.settings
        self.model.train()
        order = self._epoch_order(len(source), epoch)
        batches = [order[i:i + settings.batch_size].tolist() for i in range(0, len(order), settings.batch_size)]
        checkpoints = {round(len(batches) * k / settings.evals_per_epoch) for k in range(1, settings.evals_per_epoch)}
        weights = (class_weights(source.labels, self.model.config.num_labels).to(self.device)
                   if settings.class_weighted else None)
        total_loss, seen = 0.0, 0
        self.optimizer.zero_grad(set_to_none=True)
        progress = tqdm(batches, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch", disable=None)
        for number, indices in enumerate(progress, start=1):
            labels = source.labels[indices].to(self.device)
            with autocast(self.device):
                logits = source.logits(self.model, indices, self.device)
            loss = nn.functional.cross_entropy(logits.float(), labels, weight=weights)
            (loss / settings.grad_accum).backward()
            total_loss += loss.item() * len(indices)
            seen += len(indices)
            if number % settings.grad_accum == 0 or number == len(batches):
                torch.nn.utils.clip_grad_norm_(self.parameters, settings.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
            progress.set_postfix(loss=f"{total_loss / seen:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
            if validate is not None and number in checkpoints:
                validate(round(epoch + number / len(batches), 2))
                self.model.train()
        return total_loss / max(1, seen)

    def _validate(self, val: BatchSource, at: float) -> tuple[dict[str, Any], bool]:
        """Score the validation split; keep best.pt when the selection metric improved."""
        metrics = evaluate(self.model, val, self.device, self.settings.eval_batch_size, desc="val")
        score = metrics[self.settings.selection]
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_epoch, self.best_metrics = score, at, metrics
            self.model.save(self.out / "best.pt")
        log.info("validated", at_epoch=at, **{self.settings.selection: round(score, 4)}, improved=improved)
        return metrics, improved

    def fit(self, train: BatchSource, val: BatchSource, resume: bool = False) -> TrainResult:
        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(self.settings.seed)
        batches_per_epoch = math.ceil(len(train) / self.settings.batch_size)
        if resume and (self.out / "last.pt").is_file():
            self.resume(self.out / "last.pt", batches_per_epoch)
        else:
            self._make_scheduler(batches_per_epoch)
        stopped_early = self.bad_epochs >= self.settings.patience
        for epoch in range(self.start_epoch, self.settings.epochs):
            if stopped_early:
                break
            torch.manual_seed(self.settings.seed * 1000 + epoch)  # dropout masks: reproducible after resume
            epoch_started = time.perf_counter()
            improved_inside = False

            def validate_inside(at: float) -> None:
                nonlocal improved_inside
                metrics, improved = self._validate(val, at)
                improved_inside |= improved
                self.history.append({"epoch": at, "val_accuracy": metrics["accuracy"],
                                     "val_weighted_f1": metrics["weighted_f1"],
                                     "val_macro_recall": metrics["macro_recall"], "improved": improved})

            with train.attach(self.model):
                inside = (validate_inside,) if self.settings.evals_per_epoch > 1 else ()
                loss = self._train_epoch(train, epoch, *inside)
            metrics, improved = self._validate(val, float(epoch + 1))
            improved = improved or improved_inside
            self.bad_epochs = 0 if improved else self.bad_epochs + 1
            self.history.append({"epoch": epoch + 1, "train_loss": loss, "val_accuracy": metrics["accuracy"],
                                 "val_weighted_f1": metrics["weighted_f1"], "val_macro_recall": metrics["macro_recall"],
                                 "improved": improved, "seconds": round(time.perf_counter() - epoch_started, 1)})
            log.info("epoch done", **self.history[-1])
            self.save_state(epoch)
            (self.out / "history.json").write_text(json.dumps(self.history, indent=2) + "\n")
            stopped_early = self.bad_epochs >= self.settings.patience
        if stopped_early:
            log.info("early stop", best_epoch=self.best_epoch, selection=self.settings.selection,
                     best_score=self.best_score)
        return TrainResult(self.best_epoch, self.best_score, self.best_metrics, self.history, stopped_early,
                           time.perf_counter() - started)
