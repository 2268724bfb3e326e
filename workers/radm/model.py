"""RADM: pretrained text and image encoders, MHRA cross-modal interaction, self-fusion, classifier.

Shapes: text tokens (B, T), image tokens (N, P) for the N posts with an image; both are projected to
`hidden`, interact for `layers` layers, are concatenated and fused for `fusion_layers` layers (a text-only
post's text alone), then the masked means of the text part and of the image part are concatenated and
classified.

Missing inputs are masks, never zeros the model could learn from: padding tokens and the tokens of
an absent image are never attended to or pooled; a post without any text (all-zero attention mask)
or without an image pools a zero vector for that modality.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import Tensor, nn

from core.logging import get_logger
from workers.radm.config import RADMConfig
from workers.radm.encoders import TextEncoder, build_image_encoder, freeze, image_token_count
from workers.radm.layers import FusionLayer, InteractionLayer, Scores, image_posts

log = get_logger(__name__)

CHECKPOINT_FORMAT = "radm-checkpoint-1"


class Projection(nn.Module):
    """Encoder width -> shared width, with LayerNorm so both modalities start on one scale."""

    def __init__(self, width: int, config: RADMConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(width, config.hidden)
        self.norm = nn.LayerNorm(config.hidden)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.norm(self.linear(x)))


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Mean over real tokens; a row without any is a zero vector (no NaN)."""
    keep = mask.unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class RADM(nn.Module):
    """Logits (B, num_labels) for a batch of image-text posts; see `forward`."""

    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        self.config = config
        self.text_encoder = TextEncoder(config)
        self.image_encoder = build_image_encoder(config)
        if config.freeze_text_encoder:
            freeze(self.text_encoder)
        elif config.freeze_text_embeddings:
            freeze(self.text_encoder.word_embeddings())
        if config.frozen_text_layers and not config.freeze_text_encoder:
            for _, module in self.text_encoder.frozen_modules(config.frozen_text_layers):
                freeze(module)
        if config.freeze_image_encoder:
            freeze(self.image_encoder)
        self.text_projection = Projection(self.text_encoder.width, config)
        self.image_projection = Projection(self.image_encoder.width, config)
        self.modality_embedding = nn.Embedding(2, config.hidden)
        # CNN region tokens carry no position; ViT patch tokens already do.
        self.image_positions = None
        if not self.image_encoder.has_positions:
            tokens = image_token_count(self.image_encoder, config.image_size)
            self.image_positions = nn.Parameter(torch.zeros(1, tokens, config.hidden))
            nn.init.trunc_normal_(self.image_positions, std=0.02)
        self.interaction = nn.ModuleList(InteractionLayer(config, first=i == 0) for i in range(config.layers))
        self.fusion = nn.ModuleList(FusionLayer(config, first=i == 0) for i in range(config.fusion_layers))
        self.classifier = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(2 * config.hidden, config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_labels),
        )

    # -- modes -------------------------------------------------------------------------------------------

    def train(self, mode: bool = True) -> RADM:
        """Frozen encoders (and frozen text layers) stay in eval mode: their BatchNorm statistics and dropout must not
        change."""
        super().train(mode)
        if self.config.freeze_text_encoder:
            self.text_encoder.eval()
        elif self.config.frozen_text_layers:
            for _, module in self.text_encoder.frozen_modules(self.config.frozen_text_layers):
                module.eval()
        if self.config.freeze_image_encoder:
            self.image_encoder.eval()
        return self

    # -- forward -----------------------------------------------------------------------------------------

    def encode_text(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        # An all-padding row would give the encoder nothing to attend to; let it see token 0, whose
        # output is masked out below anyway. (Elementwise: a boolean index would wait for the GPU; out of
        # place, so that the ONNX exporter can trace it.)
        real = attention_mask.bool()
        encoder_mask = torch.cat([real[:, :1] | ~real.any(1, keepdim=True), real[:, 1:]], dim=1)
        frozen = self.config.freeze_text_encoder
        with torch.no_grad() if frozen else contextlib.nullcontext():
            states = self.text_encoder(input_ids, encoder_mask)
        return self.text_projection(states) + self.modality_embedding.weight[0]

    def encode_image(self, pixel_values: Tensor, image_rows: Tensor) -> Tensor:
        """Image tokens (N, P, hidden) of the N posts that `image_rows` names, the ones with an image: a text-only
        post costs no image FLOPs, in the encoder or in the interaction layers."""
        frozen = self.config.freeze_image_encoder
        with torch.no_grad() if frozen else contextlib.nullcontext():
            if getattr(self.image_encoder, "whole_batch_only", False):  # e.g. training's cached features
                (states,) = image_posts(image_rows, self.image_encoder(pixel_values))
            elif len(image_rows):
                states = self.image_encoder(*image_posts(image_rows, pixel_values))
            else:
                tokens = image_token_count(self.image_encoder, self.config.image_size)
                states = pixel_values.new_zeros(0, tokens, self.image_encoder.width)
        image = self.image_projection(states) + self.modality_embedding.weight[1]
        if self.image_positions is not None:
            image = image + self.image_positions[:, : image.shape[1]]
        return image

    def forward(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, has_image: Tensor,
                image_rows: Tensor | None = None) -> Tensor:
        """input_ids/attention_mask: (B, T), mask 1 = real token; pixel_values: (B, 3, S, S) normalised;
        has_image: (B,) bool; image_rows: optionally, the indices where has_image is True, which saves finding
        them with `nonzero` (a wait for the GPU). Returns logits (B, num_labels)."""
        text_mask = attention_mask.bool()
        has_image = has_image.bool()
        if image_rows is None:
            image_rows = has_image.nonzero().squeeze(1)
        text = self.encode_text(input_ids, attention_mask)
        image = self.encode_image(pixel_values, image_rows)

        scores: Scores | None = None
        for layer in self.interaction:
            text, image, scores = layer(text, text_mask, image, image_rows, scores)

        return self.classifier(self.fuse(text, text_mask, image, has_image, image_rows))

    def fuse(self, text: Tensor, text_mask: Tensor, image: Tensor, has_image: Tensor, image_rows: Tensor) -> Tensor:
        """The fusion encoder, pooled: (B, 2 * hidden), the masked means of each post's text and image tokens.

        A post with an image fuses its text and image tokens; a text-only post fuses its text alone, which is
        exactly what fusing it with masked image tokens gave (a masked key gets no attention, and the score
        gate reads only real pairs), and its image half pools to zeros. On the full-size model a text-only post
        thus costs 3.5 GFLOP instead of 6.4. The two groups are found from shapes and `argsort`, without waiting
        for the GPU.
        """
        batch, length = text.shape[:2]
        joint = None
        if len(image):
            posts_text, posts_mask = image_posts(image_rows, text, text_mask)
            fused = self._fusion(torch.cat([posts_text, image], dim=1),
                                 torch.cat([posts_mask, posts_mask.new_ones(image.shape[:2])], dim=1))
            joint = torch.cat([masked_mean(fused[:, :length], posts_mask), fused[:, length:].mean(1)], dim=-1)
            if len(image) == batch:
                return joint
        text_rows = torch.argsort(has_image.to(torch.uint8), stable=True)[: batch - len(image)]  # text-only first
        only_text, only_mask = text.index_select(0, text_rows), text_mask.index_select(0, text_rows)
        text_pooled = masked_mean(self._fusion(only_text, only_mask), only_mask)
        pooled = text.new_zeros(batch, 2 * text.shape[-1]).index_copy(
            0, text_rows, torch.cat([text_pooled, torch.zeros_like(text_pooled)], dim=-1))
        return pooled if joint is None else pooled.index_copy(0, image_rows, joint)

    def _fusion(self, fused: Tensor, mask: Tensor) -> Tensor:
        scores = None
        for layer in self.fusion:
            fused, scores = layer(fused, mask, scores)
        return fused

    # -- checkpoints -------------------------------------------------------------------------------------

    def excluded_prefixes(self) -> tuple[str, ...]:
        """Frozen encoders with pretrained weights reload from their source, so checkpoints leave them out."""
        prefixes = []
        if self.config.freeze_text_encoder and self.config.text_pretrained:
            prefixes.append("text_encoder.")
        elif self.config.frozen_text_layers and self.config.text_pretrained:
            prefixes += [f"text_encoder.{name}" for name, _ in
                         self.text_encoder.frozen_modules(self.config.frozen_text_layers)]
        elif self.config.freeze_text_embeddings and self.config.text_pretrained:
            prefixes.append(self.text_encoder.word_embeddings_prefix("text_encoder."))
        if self.config.freeze_image_encoder and self.config.image_pretrained:
            prefixes.append("image_encoder.")
        return tuple(prefixes)

    def checkpoint_state(self) -> dict[str, Tensor]:
        excluded = self.excluded_prefixes()
        return {k: v for k, v in self.state_dict().items() if not k.startswith(excluded)}

    def save(self, path: str | Path, dtype: torch.dtype = torch.float32) -> None:
        """Config + weights (minus frozen pretrained encoders), loadable with torch.load(weights_only=True).
        Floating-point weights are saved as `dtype` whatever the model runs in (bf16 on GPUs); float16 halves a
        shipped checkpoint that carries a fine-tuned encoder, and loading casts back to the model's float32."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        weights = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu()
                   for k, v in self.checkpoint_state().items()}
        torch.save({"format": CHECKPOINT_FORMAT, "config": self.config.to_dict(), "weights": weights,
                    "excluded": list(self.excluded_prefixes())}, path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> RADM:
        """Rebuild from `save` output (encoders left out come from their packages); returned in eval mode."""
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a RADM checkpoint (format {state.get('format')!r})")
        model = cls(RADMConfig.from_dict(state["config"]))
        result = model.load_state_dict(state["weights"], strict=False)
        excluded = tuple(state["excluded"])
        missing = [k for k in result.missing_keys if not k.startswith(excluded)]
        if missing or result.unexpected_keys:
            raise ValueError(f"checkpoint {path} does not fit its config: missing {missing[:5]}, "
                             f"unexpected {result.unexpected_keys[:5]}")
        log.info("RADM checkpoint loaded", path=str(path), version=model.config.version,
                 tensors=len(state["weights"]))
        return model.to(map_location).eval()
