"""RADM behind one call: a batch of Posts in, a SentimentResult per post out."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from monitor.logging import get_logger
from schemas import Label, Post, SentimentResult
from workers.radm import RADM, RADMConfig
from workers.radm.processor import RADMProcessor

log = get_logger(__name__)

Decoded = tuple[str, np.ndarray | None]
"""What `decode` returns per post: its text and its image (float CHW in [0, 1]) or None."""


BOOTSTRAP = "bootstrap"
"""MODEL_CHECKPOINT value naming the checkpoint shipped in the package (see the README's model card)."""
UNTRAINED = "untrained"
"""MODEL_CHECKPOINT value for a seeded, untrained tiny model: tests that need no weights."""


def resolve_checkpoint(name: str | Path | None) -> Path | None:
    """`bootstrap` -> the shipped file, `untrained`/None -> no checkpoint, anything else -> a path."""
    if name is None or str(name) == UNTRAINED:
        return None
    if str(name) == BOOTSTRAP:
        return Path(__file__).resolve().parent / "radm" / "checkpoints" / "bootstrap.pt"
    return Path(name)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _schema_labels(config: RADMConfig) -> tuple[Label, ...]:
    """The worker emits sentiment labels only: a checkpoint of another label set (e.g. emotions) is refused."""
    try:
        return tuple(Label(name) for name in config.labels)
    except ValueError:
        raise ValueError(f"checkpoint labels {config.labels} are not sentiment labels {[x.value for x in Label]}")\
            from None


class SentimentModel:
    """Owns the network, its processor, its device and its version string."""

    def __init__(self, model: RADM, device: torch.device, version: str) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.version = version
        self.processor = RADMProcessor(model.config)
        self.labels = _schema_labels(model.config)

    @property
    def config(self) -> RADMConfig:
        return self.model.config

    @classmethod
    def load(cls, checkpoint: Path | str | None, device: str = "auto") -> SentimentModel:
        """From a checkpoint written by `RADM.save` (e.g. workers/radm/checkpoints/bootstrap.pt), or a seeded,
        untrained tiny model when none is given (tests, demos: no weights needed)."""
        target = resolve_device(device)
        checkpoint = resolve_checkpoint(checkpoint)
        if checkpoint is None:
            torch.manual_seed(0)
            config = RADMConfig.tiny()
            log.warning("no MODEL_CHECKPOINT: using a seeded untrained tiny RADM; labels are not meaningful")
            return cls(RADM(config), target, f"{config.version}-untrained")
        model = RADM.load(checkpoint, map_location="cpu")
        return cls(model, target, model.config.version)

    def save(self, path: Path) -> None:
        self.model.save(path)

    def decode(self, post: Post, max_pixels: int) -> Decoded:
        """CPU-side work for one post; raises BadInput for an image that cannot be used."""
        image = self.processor.decode_image(post.image, max_pixels) if post.image is not None else None
        return post.text, image

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def predict(self, posts: Sequence[Post], decoded: Sequence[Decoded]) -> list[SentimentResult]:
        started = time.perf_counter()
        batch = self.processor.encode([d[0] for d in decoded], [d[1] for d in decoded])
        batch = {name: tensor.to(self.device, non_blocking=True) for name, tensor in batch.items()}
        with self._autocast():
            logits = self.model(**batch)
        probabilities = torch.softmax(logits.float(), dim=-1).cpu().tolist()
        per_post_ms = (time.perf_counter() - started) * 1000 / max(1, len(posts))
        return [
            SentimentResult(
                post_id=post.post_id,
                created_at=post.created_at,
                label=self.labels[max(range(len(probs)), key=probs.__getitem__)],
                probabilities=dict(zip(self.labels, probs, strict=True)),
                brands=sorted(set(post.brands)),
                keywords=sorted(set(post.keywords)),
                model_version=self.version,
                latency_ms=per_post_ms,
                text=post.text,
                image_ref=post.image_ref,
            )
            for post, probs in zip(posts, probabilities, strict=True)
        ]
