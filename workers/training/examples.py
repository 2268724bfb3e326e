"""The one example type every loader yields, and the fixed-seed 8:1:1 split."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPLITS = ("train", "val", "test")
DEFAULT_SEED = 42


@dataclass(frozen=True)
class Example:
    """One labelled post: its text, its image file (or None) and the index of its label."""

    text: str
    image: Path | None
    label: int
    id: str = ""


@dataclass
class DatasetSplits:
    """train/val/test examples with the label names their indices refer to, and loading notes."""

    name: str
    labels: tuple[str, ...]
    train: list[Example]
    val: list[Example]
    test: list[Example]
    notes: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[Example]:
        if name == "dev":
            name = "val"
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}: use one of {SPLITS}")
        return getattr(self, name)

    def summary(self) -> dict[str, Any]:
        """Sizes and label counts per split (JSON-safe): what a metrics file should say it was trained on."""
        out: dict[str, Any] = {"dataset": self.name, "labels": list(self.labels), **self.notes}
        for name in SPLITS:
            examples = self.split(name)
            counts = Counter(self.labels[e.label] for e in examples)
            out[name] = {"size": len(examples), "with_image": sum(e.image is not None for e in examples),
                         "labels": {label: counts.get(label, 0) for label in self.labels}}
        return out


def split_811(examples: Sequence[Example], seed: int = DEFAULT_SEED) -> tuple[list[Example], list[Example],
                                                                             list[Example]]:
    """Shuffle with a private RNG and cut 80/10/10; the same input order and seed give the same split."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = round(0.8 * len(order))
    n_val = round(0.1 * len(order))
    pick = [examples[i] for i in order]
    return pick[:n_train], pick[n_train:n_train + n_val], pick[n_train + n_val:]
