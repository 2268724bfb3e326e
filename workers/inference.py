"""RADM behind one call: a batch of Posts in, a SentimentResult per post out."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch

from schemas import LABELS, Post, SentimentResult
from workers.preprocess import collate, decode_image, tokenize
from workers.radm import RADM, RADMConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class SentimentModel:
    """Owns the network, its device and its version string."""

    def __init__(self, model: RADM, device: torch.device, version: str) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.version = version

    @property
    def config(self) -> RADMConfig:
        return self.model.config

    @classmethod
    def load(cls, checkpoint: Path | None, device: str = "auto") -> SentimentModel:
        """From a checkpoint written by `save`, or a seeded untrained model when none is given."""
        if checkpoint is None:
            torch.manual_seed(0)
            config = RADMConfig()
            return cls(RADM(config), resolve_device(device), f"{config.version}-untrained")
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        config = RADMConfig(**state["config"])
        model = RADM(config)
        model.load_state_dict(state["weights"])
        return cls(model, resolve_device(device), config.version)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": self.config.to_dict(), "weights": self.model.state_dict()}, path)

    def decode(self, post: Post, max_pixels: int):
        """CPU-side work for one post; raises BadInput for an image that cannot be used."""
        image = decode_image(post.image, self.config, max_pixels) if post.image is not None else None
        return tokenize(post.text, self.config), image

    @torch.inference_mode()
    def predict(self, posts: Sequence[Post], decoded: Sequence[tuple]) -> list[SentimentResult]:
        started = time.perf_counter()
        token_ids, images, has_image = collate([d[0] for d in decoded], [d[1] for d in decoded], self.config)
        logits = self.model(token_ids.to(self.device), images.to(self.device), has_image.to(self.device))
        probabilities = torch.softmax(logits.float(), dim=-1).cpu().tolist()
        per_post_ms = (time.perf_counter() - started) * 1000 / max(1, len(posts))
        return [
            SentimentResult(
                post_id=post.post_id,
                created_at=post.created_at,
                label=LABELS[max(range(len(probs)), key=probs.__getitem__)],
                probabilities=dict(zip(LABELS, probs, strict=True)),
                brands=sorted(set(post.brands)),
                keywords=sorted(set(post.keywords)),
                model_version=self.version,
                latency_ms=per_post_ms,
                text=post.text,
                image_ref=post.image_ref,
            )
            for post, probs in zip(posts, probabilities, strict=True)
        ]
