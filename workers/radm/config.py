"""RADM hyper-parameters, saved inside every checkpoint so a checkpoint is self-describing."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class RADMConfig:
    vocab_buckets: int = 2**15
    """Text tokens are hashed into this many embedding rows (no tokenizer download needed)."""
    max_text_tokens: int = 64
    image_size: int = 64
    patch_size: int = 16
    hidden: int = 64
    heads: int = 4
    layers: int = 1
    dropout: float = 0.2
    num_labels: int = 3
    version: str = "radm-skeleton-0"

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return asdict(self)
