"""Optional Optuna search over learning rate, weight decay and dropout, on one set of cached features.

Each trial trains a fresh head into `out/optuna/trial-N` (same data sources, so frozen-encoder features
are computed once for the whole study); the best trial's checkpoint is copied to `out`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from core.logging import get_logger
from workers.radm import RADM, RADMConfig
from workers.training.artifacts import copy_best
from workers.training.sources import BatchSource
from workers.training.trainer import Trainer, TrainSettings

log = get_logger(__name__)


def run_search(trials: int, config: RADMConfig, settings: TrainSettings, train: BatchSource, val: BatchSource,
               out: Path, device: torch.device) -> dict[str, Any]:
    """Maximise validation weighted F1 with a seeded TPE sampler; returns the study summary."""
    import optuna

    results: dict[int, Any] = {}

    def objective(trial: optuna.Trial) -> float:
        trial_settings = dataclasses.replace(settings, lr=trial.suggest_float("lr", 3e-5, 1e-3, log=True),
                                             weight_decay=trial.suggest_float("weight_decay", 1e-4, 0.1, log=True))
        trial_config = config.replace(dropout=trial.suggest_float("dropout", 0.0, 0.5))
        torch.manual_seed(settings.seed)
        model = RADM(trial_config)
        result = Trainer(model, trial_settings, out / "optuna" / f"trial-{trial.number}", device).fit(train, val)
        results[trial.number] = result
        return result.best_score

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=settings.seed))
    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    copy_best(out / "optuna" / f"trial-{best.number}", out)
    log.info("optuna done", best_trial=best.number, best_val_weighted_f1=best.value, **best.params)
    return {"trials": [{"number": t.number, "value": t.value, "params": t.params} for t in study.trials],
            "best_trial": best.number, "best_params": best.params, "best_value": best.value,
            "best_epoch": results[best.number].best_epoch, "history": results[best.number].history}
