"""Accuracy, weighted F1 (the paper's metrics), per-class report and confusion matrix, plus its PNG."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def expected_calibration_error(y_true: Sequence[int], probabilities: Sequence[Sequence[float]],
                               bins: int = 15) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins
    weighted by how many predictions fall in each (Guo et al. 2017)."""
    import numpy as np

    probs = np.asarray(probabilities, dtype=float)
    confidence, predicted = probs.max(axis=1), probs.argmax(axis=1)
    correct = predicted == np.asarray(y_true)
    edges = np.linspace(0.0, 1.0, bins + 1)
    error = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > low) & (confidence <= high)
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str],
                           probabilities: Sequence[Sequence[float]] | None = None) -> dict[str, Any]:
    """JSON-safe metrics; every class in `labels` is reported, also when a split lacks it. Macro recall is
    averaged over the classes the data holds (TweetEval's metric); ECE needs `probabilities`."""
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

    indices = list(range(len(labels)))
    report = classification_report(y_true, y_pred, labels=indices, target_names=list(labels), output_dict=True,
                                   zero_division=0)
    present = sorted(set(y_true))
    per_class = {name: {k: float(v) for k, v in report[name].items()} for name in labels}
    metrics = {
        "examples": len(y_true),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "weighted_f1": float(f1_score(y_true, y_pred, labels=indices, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "macro_recall": sum(per_class[labels[i]]["recall"] for i in present) / max(1, len(present)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
        "labels": list(labels),
    }
    if probabilities is not None:
        metrics["ece"] = expected_calibration_error(y_true, probabilities)
    return metrics


def format_report(metrics: dict[str, Any]) -> str:
    """A plain-text table for the terminal."""
    lines = [f"examples {metrics['examples']}  accuracy {metrics['accuracy']:.4f}  "
             f"weighted F1 {metrics['weighted_f1']:.4f}  macro F1 {metrics['macro_f1']:.4f}  "
             f"macro recall {metrics['macro_recall']:.4f}",
             f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<12}{row['precision']:>10.4f}{row['recall']:>10.4f}{row['f1-score']:>10.4f}"
                     f"{int(row['support']):>10d}")
    lines.append("confusion (rows = true, columns = predicted): " + str(metrics["confusion_matrix"]))
    return "\n".join(lines)


def save_confusion_png(matrix: Sequence[Sequence[int]], labels: Sequence[str], path: Path, title: str = "") -> Path:
    """Counts with row-normalised colour; Agg backend, so it works on headless hosts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(matrix, dtype=float)
    shares = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    figure, axes = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.1 * len(labels) + 2))
    image = axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    axes.set_yticks(range(len(labels)), labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for row in range(len(labels)):
        for col in range(len(labels)):
            axes.text(col, row, f"{int(counts[row, col])}", ha="center", va="center",
                      color="white" if shares[row, col] > 0.5 else "black")
    figure.colorbar(image, ax=axes, fraction=0.046, label="share of true class")
    if title:
        axes.set_title(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
