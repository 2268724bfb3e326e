"""How close an ONNX runtime's probabilities are to PyTorch's: label agreement and the largest |delta p|.

`probe_posts` is a fixed, seeded mix of posts (short and long texts, emoji, blank texts, with and without a
photo-like image) that every export is checked on before MODEL_RUNTIME=auto serves it; `monitor model parity`
measures the same figures on the evaluation sets.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from workers.inference.model import Decoded

MIN_AGREEMENT = 0.99
"""Label agreement an ONNX export must reach on the probe before MODEL_RUNTIME=auto uses it (issue 27)."""

_WORDS = ("love", "hate", "the", "new", "phone", "update", "is", "great", "terrible", "okay", "battery", "service",
          "never", "again", "best", "worst", "ever", "delivery", "late", "fine", "thanks", "support", "broken",
          "amazing", "meh", "just", "arrived", "today", "not", "bad", "😍", "😡", "🙂", "#fail", "@brand", "!!")


@dataclass(frozen=True)
class Parity:
    """Agreement of two scorers' labels over `posts` posts, and the largest absolute probability difference."""

    posts: int
    agreement: float
    max_abs_diff: float
    mean_abs_diff: float

    @property
    def holds(self) -> bool:
        return self.agreement >= MIN_AGREEMENT

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "holds": self.holds}


def compare(reference: Sequence[Sequence[float]], candidate: Sequence[Sequence[float]]) -> Parity:
    """Parity of `candidate` against `reference` probabilities (rows = posts, same order)."""
    ref, cand = np.asarray(reference, dtype=np.float64), np.asarray(candidate, dtype=np.float64)
    if ref.shape != cand.shape or not len(ref):
        raise ValueError(f"cannot compare probabilities of shapes {ref.shape} and {cand.shape}")
    diff = np.abs(ref - cand)
    return Parity(posts=len(ref), agreement=round(float((ref.argmax(1) == cand.argmax(1)).mean()), 4),
                  max_abs_diff=float(f"{diff.max():.3g}"), mean_abs_diff=float(f"{diff.mean():.3g}"))


def _photo(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth, photo-like uint8 image: a coarse random grid scaled up (random noise would be no image's)."""
    coarse = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    reps = -(-size // 8)
    return np.kron(coarse, np.ones((reps, reps, 1), dtype=np.uint8))[:size, :size]


def probe_posts(image_size: int, count: int = 48, seed: int = 27, image_share: float = 0.5) -> list[Decoded]:
    """`count` decoded posts, seeded: 1-40 words, every eighth text blank (an image-only post, or nothing)."""
    words, rng = random.Random(seed), np.random.default_rng(seed)
    posts: list[Decoded] = []
    for i in range(count):
        text = "" if i % 8 == 7 else " ".join(words.choice(_WORDS) for _ in range(words.randint(1, 40)))
        image = _photo(rng, image_size) if words.random() < image_share else None
        posts.append((text, image))
    return posts
