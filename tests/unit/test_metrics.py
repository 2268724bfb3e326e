"""Metrics against a hand-computed example and scikit-learn; the confusion PNG is a real image."""

from __future__ import annotations

import pytest
from PIL import Image

from workers.training.metrics import classification_metrics, format_report, save_confusion_png

pytest.importorskip("sklearn")
LABELS = ("negative", "neutral", "positive")
Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]


def test_hand_example():
    metrics = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    # Per class F1: negative p=1/2 r=1/2 -> 0.5; neutral p=2/3 r=1 -> 0.8; positive p=1 r=1/2 -> 2/3.
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["per_class"]["neutral"]["f1-score"] == pytest.approx(0.8)
    assert metrics["per_class"]["positive"]["precision"] == pytest.approx(1.0)
    assert metrics["weighted_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    assert metrics["examples"] == 6 and metrics["labels"] == list(LABELS)


def test_matches_sklearn_with_unequal_support():
    from sklearn.metrics import accuracy_score, f1_score

    y_true = [0, 0, 0, 0, 1, 2, 2, 1, 0, 2]
    y_pred = [0, 0, 1, 2, 1, 2, 0, 1, 0, 1]
    metrics = classification_metrics(y_true, y_pred, LABELS)
    assert metrics["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert metrics["weighted_f1"] == pytest.approx(f1_score(y_true, y_pred, average="weighted"))


def test_absent_class_is_still_reported():
    metrics = classification_metrics([0, 0, 2], [0, 2, 2], LABELS)
    assert metrics["per_class"]["neutral"]["support"] == 0
    assert metrics["confusion_matrix"][1] == [0, 0, 0]


def test_confusion_png_and_report(tmp_path):
    pytest.importorskip("matplotlib")
    metrics = classification_metrics(Y_TRUE, Y_PRED, LABELS)
    path = save_confusion_png(metrics["confusion_matrix"], LABELS, tmp_path / "sub" / "confusion.png", "test")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size[0] > 100
    text = format_report(metrics)
    assert "weighted F1 0.6556" in text and "neutral" in text
