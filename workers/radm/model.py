"""A compact RADM: text and image token sequences, cross-modal attention, fused classifier.

This is the walking-skeleton size of the model; the BERT/ViT encoders and the gated
residual attention of the paper replace the two small encoders and the plain layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from workers.radm.config import RADMConfig


class CrossModalLayer(nn.Module):
    """Self-attention within each modality, then each modality attends to the other (dual path)."""

    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        h, heads, p = config.hidden, config.heads, config.dropout
        self.text_self = nn.MultiheadAttention(h, heads, dropout=p, batch_first=True)
        self.image_self = nn.MultiheadAttention(h, heads, dropout=p, batch_first=True)
        self.text_to_image = nn.MultiheadAttention(h, heads, dropout=p, batch_first=True)
        self.image_to_text = nn.MultiheadAttention(h, heads, dropout=p, batch_first=True)
        self.norms = nn.ModuleList(nn.LayerNorm(h) for _ in range(6))
        self.text_ffn = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(), nn.Dropout(p), nn.Linear(4 * h, h))
        self.image_ffn = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(), nn.Dropout(p), nn.Linear(4 * h, h))

    def forward(self, text: Tensor, text_pad: Tensor, image: Tensor, image_pad: Tensor) -> tuple[Tensor, Tensor]:
        n = self.norms
        text = n[0](text + self.text_self(text, text, text, key_padding_mask=text_pad, need_weights=False)[0])
        image = n[1](image + self.image_self(image, image, image, key_padding_mask=image_pad, need_weights=False)[0])
        text_x = self.text_to_image(text, image, image, key_padding_mask=image_pad, need_weights=False)[0]
        image_x = self.image_to_text(image, text, text, key_padding_mask=text_pad, need_weights=False)[0]
        text, image = n[2](text + text_x), n[3](image + image_x)
        return n[4](text + self.text_ffn(text)), n[5](image + self.image_ffn(image))


def _masked_mean(x: Tensor, pad: Tensor) -> Tensor:
    keep = (~pad).unsqueeze(-1).to(x.dtype)
    return (x * keep).sum(1) / keep.sum(1).clamp(min=1.0)


class RADM(nn.Module):
    """Logits over (negative, neutral, positive) for a batch of posts."""

    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        self.config = config
        h = config.hidden
        self.token_embedding = nn.Embedding(config.vocab_buckets, h, padding_idx=0)
        self.text_position = nn.Parameter(torch.zeros(1, config.max_text_tokens, h))
        self.patch_embedding = nn.Conv2d(3, h, kernel_size=config.patch_size, stride=config.patch_size)
        self.image_position = nn.Parameter(torch.zeros(1, config.num_patches, h))
        self.layers = nn.ModuleList(CrossModalLayer(config) for _ in range(config.layers))
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(2 * h, config.num_labels))

    def forward(self, token_ids: Tensor, images: Tensor, has_image: Tensor) -> Tensor:
        """token_ids: (B, T) with 0 = padding; images: (B, 3, S, S); has_image: (B,) bool."""
        text_pad = token_ids == 0
        text = self.token_embedding(token_ids) + self.text_position[:, : token_ids.shape[1]]
        image = self.patch_embedding(images).flatten(2).transpose(1, 2) + self.image_position
        image_pad = (~has_image).unsqueeze(1).expand(-1, image.shape[1])
        # A post with no text (or no image) still needs one key to attend to; unmask slot 0,
        # which is zeroed out below so it carries no information.
        text_pad = text_pad.clone()
        text_pad[:, 0] = False
        image_pad = image_pad.clone()
        image_pad[:, 0] = False
        text = text.masked_fill(text_pad.unsqueeze(-1), 0.0)
        image = image.masked_fill((~has_image).view(-1, 1, 1), 0.0)
        for layer in self.layers:
            text, image = layer(text, text_pad, image, image_pad)
        pooled_image = _masked_mean(image, image_pad) * has_image.unsqueeze(-1).to(image.dtype)
        return self.classifier(torch.cat([_masked_mean(text, text_pad), pooled_image], dim=-1))
