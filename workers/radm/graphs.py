"""RADM's forward pass as two fixed graphs, for exporters that trace (ONNX): posts with an image, posts without.

`RADM.forward` picks its path per batch from shapes (which posts have an image, whether all or none do), which
a tracer would freeze at the example batch's choice. Splitting a batch by that choice first gives two graphs
without any branch, each exact for its posts: the image graph is `forward` with every post holding an image;
the text graph is `forward` with none, i.e. text self-attention, the cross path's zero context, text-only
fusion and a zero image half, which is what `RADM.fuse` computes for a text-only post. Posts never interact
in a batch, so scoring the two groups apart changes nothing.

Both graphs end in the calibrated probabilities (softmax of logits / temperature), so a runtime needs nothing
of PyTorch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from workers.radm.encoders import image_token_count
from workers.radm.model import RADM, masked_mean


class ImageTextGraph(nn.Module):
    """(input_ids, attention_mask, pixel_values) of posts that all have an image -> probabilities (B, labels)."""

    def __init__(self, model: RADM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor) -> Tensor:
        rows = torch.arange(input_ids.shape[0], device=input_ids.device)
        has_image = torch.ones_like(attention_mask[:, 0], dtype=torch.bool)
        logits = self.model(input_ids, attention_mask, pixel_values, has_image, rows)
        return torch.softmax(logits.float() / self.model.config.temperature, dim=-1)


class TextGraph(nn.Module):
    """(input_ids, attention_mask) of posts without an image -> probabilities (B, labels)."""

    def __init__(self, model: RADM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        model = self.model
        text_mask = attention_mask.bool()
        text = model.encode_text(input_ids, attention_mask)
        tokens = image_token_count(model.image_encoder, model.config.image_size)
        image = text.new_zeros(0, tokens, model.config.hidden)  # no post has one: every layer skips the image path
        rows = torch.zeros(0, dtype=torch.long, device=text.device)
        scores = None
        for layer in model.interaction:
            text, image, scores = layer(text, text_mask, image, rows, scores)
        pooled = masked_mean(model._fusion(text, text_mask), text_mask)
        logits = model.classifier(torch.cat([pooled, torch.zeros_like(pooled)], dim=-1))
        return torch.softmax(logits.float() / model.config.temperature, dim=-1)
