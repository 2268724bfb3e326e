"""`monitor model parity`: the ONNX runtimes against PyTorch on evaluation sets (issue 27: >= 99% label agreement).

Every runtime scores the same decoded items (`report.model_inputs`, no OCR: the inputs, not the reader, are
compared), so the agreement and the largest |delta p| are the runtimes' own; each runtime's accuracy and
macro-F1 against the set's labels say what a difference costs. The image set is scored in three ways (text only,
image only, text + image), so the image graph and the posts without an image are both checked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from core.logging import get_logger
from workers.evaluation.report import MAX_PIXELS, _posts, model_probabilities
from workers.evaluation.sets import EvalSet
from workers.inference.model import SentimentModel
from workers.inference.onnx_parity import compare
from workers.radm.config import SENTIMENT_LABELS
from workers.training.metrics import classification_metrics

log = get_logger(__name__)

IMAGE_CONDITIONS = {"text only": (True, False), "image only": (False, True), "text + image": (True, True)}
"""How the image set is posted for parity: (with its text, with its image)."""


def _accuracy(labels: Sequence[int], probabilities: Sequence[Sequence[float]]) -> dict[str, float]:
    predictions = [max(range(len(p)), key=p.__getitem__) for p in probabilities]
    metrics = classification_metrics(labels, predictions, SENTIMENT_LABELS, probabilities)
    return {name: round(metrics[name], 4) for name in ("accuracy", "macro_f1", "macro_recall")}


def condition_parity(reference: SentimentModel, candidates: dict[str, SentimentModel], eval_set: EvalSet,
                     with_text: bool, with_image: bool, batch_size: int) -> dict[str, Any]:
    """Each runtime's probabilities on one way of posting the set: parity against `reference`, and accuracy."""
    labels = [item.label for item in eval_set.items]
    decoded = [reference.decode(post, MAX_PIXELS) for post in _posts(eval_set.items, with_text, with_image)]
    results: dict[str, Any] = {}
    expected: list[list[float]] = []
    for name, model in {"torch": reference, **candidates}.items():
        started = time.perf_counter()
        probabilities = model_probabilities(model, decoded, batch_size, f"{eval_set.name} [{name}]")
        entry: dict[str, Any] = {"seconds": round(time.perf_counter() - started, 1), **_accuracy(labels, probabilities)}
        if name == "torch":
            expected = probabilities
        else:
            entry["parity"] = compare(expected, probabilities).to_dict()
        results[name] = entry
    return results


def runtime_parity(reference: SentimentModel, candidates: dict[str, SentimentModel], eval_sets: Sequence[EvalSet],
                   batch_size: int = 64, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Set name -> condition -> runtime -> {accuracy, macro_f1, macro_recall, seconds, parity}."""
    report: dict[str, Any] = {}
    for eval_set in eval_sets:
        conditions = IMAGE_CONDITIONS if eval_set.kind == "image" else {"as posted": (True, True)}
        report[eval_set.name] = {}
        for condition, (with_text, with_image) in conditions.items():
            results = condition_parity(reference, candidates, eval_set, with_text, with_image, batch_size)
            report[eval_set.name][condition] = results
            for name, entry in results.items():
                parity = entry.get("parity")
                agreement = "" if parity is None else (f"  agreement {parity['agreement'] * 100:6.2f}%  "
                                                       f"max |dp| {parity['max_abs_diff']:.3g}")
                echo(f"{eval_set.name:<16} {condition:<13} {name:<10} n={len(eval_set.items):<6} "
                     f"acc {entry['accuracy'] * 100:5.1f}  mF1 {entry['macro_f1'] * 100:5.1f}{agreement}")
    return report
