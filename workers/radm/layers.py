"""The cross-modal deep interaction layer and the self-fusion layer, both built on MHRA.

Each attention path (text self, image self, text->image, image->text, fusion self) keeps its own
score stream: layer l's path P mixes in the scores that the same path P produced in layer l-1.
"""

from __future__ import annotations

from torch import Tensor, nn

from workers.radm.attention import ResidualMultiHeadAttention
from workers.radm.config import RADMConfig

Scores = dict[str, Tensor]


def image_posts(image_rows: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
    """The rows of each (B, ...) tensor that belong to the posts with an image; the tensors themselves, not
    copies, when every post has one (known from shapes, without waiting for the GPU)."""
    every_post = len(image_rows) == len(tensors[0])
    return tuple(tensor if every_post else tensor.index_select(0, image_rows) for tensor in tensors)


class FeedForward(nn.Module):
    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        width = config.hidden * config.ffn_multiplier
        self.net = nn.Sequential(nn.Linear(config.hidden, width), nn.GELU(), nn.Dropout(config.hidden_dropout),
                                 nn.Linear(width, config.hidden), nn.Dropout(config.hidden_dropout))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class AttentionBlock(nn.Module):
    """MHRA, then dropout, residual and LayerNorm (post-norm, as in BERT).

    The first layer of a stack has no previous scores, so it gets no gate (a gate there would be a
    parameter that never receives a gradient).
    """

    def __init__(self, config: RADMConfig, first: bool) -> None:
        super().__init__()
        self.attention = ResidualMultiHeadAttention(config.hidden, config.heads, config.attention_dropout,
                                                    residual=not (config.rm_rg or first))
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.norm = nn.LayerNorm(config.hidden)

    def forward(
        self, queries: Tensor, keys: Tensor, query_mask: Tensor | None, key_mask: Tensor | None,
        previous: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        update, scores = self.attention(queries, keys, query_mask, key_mask, previous)
        return self.norm(queries + self.dropout(update)), scores

    def without_keys(self, queries: Tensor) -> Tensor:
        """What `forward` gives queries with no real key at all (a text-only post's text against its image):
        the attention's zero context, without computing any attention."""
        return self.norm(queries + self.dropout(self.attention.zero_context(queries)))


class FeedForwardBlock(nn.Module):
    def __init__(self, config: RADMConfig) -> None:
        super().__init__()
        self.ffn = FeedForward(config)
        self.norm = nn.LayerNorm(config.hidden)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(x + self.ffn(x))


class InteractionLayer(nn.Module):
    """Intra-modal self-attention per modality, dual-path cross-modal attention, GELU FFN per modality.

    Both cross paths read the same (post self-attention) states, so neither direction sees the
    other's update of this layer. With `rm_c` the cross paths are not built at all.

    Text comes for every post (B, T), images only for the posts that have one (N, P): `image_rows` (N,)
    says which. A text-only post's text gets `without_keys` from the text->image path, which is exactly
    what attending to masked image tokens gave, without computing them. Every image token is real, so
    `image_mask` is None (all real, without passes over the score maps to apply a mask); tests give one to
    compare with the dense form.
    """

    def __init__(self, config: RADMConfig, first: bool) -> None:
        super().__init__()
        self.text_self = AttentionBlock(config, first)
        self.image_self = AttentionBlock(config, first)
        self.text_to_image = None if config.rm_c else AttentionBlock(config, first)
        self.image_to_text = None if config.rm_c else AttentionBlock(config, first)
        self.text_ffn = FeedForwardBlock(config)
        self.image_ffn = FeedForwardBlock(config)

    def forward(
        self, text: Tensor, text_mask: Tensor, image: Tensor, image_rows: Tensor, previous: Scores | None = None,
        image_mask: Tensor | None = None,
    ) -> tuple[Tensor, Tensor, Scores]:
        previous = previous or {}
        scores: Scores = {}
        text, scores["text_self"] = self.text_self(text, text, text_mask, text_mask, previous.get("text_self"))
        if len(image):
            image, scores["image_self"] = self.image_self(image, image, image_mask, image_mask,
                                                          previous.get("image_self"))
        if self.text_to_image is not None and self.image_to_text is not None:
            text, image = self._cross(self.text_to_image, self.image_to_text, text, text_mask, image, image_mask,
                                      image_rows, previous, scores)
        return self.text_ffn(text), (self.image_ffn(image) if len(image) else image), scores

    @staticmethod
    def _cross(text_to_image: AttentionBlock, image_to_text: AttentionBlock, text: Tensor, text_mask: Tensor,
               image: Tensor, image_mask: Tensor | None, image_rows: Tensor, previous: Scores,
               scores: Scores) -> tuple[Tensor, Tensor]:
        """Both cross paths, on the posts that have an image; fills in their entries of `scores`."""
        if not len(image):
            return text_to_image.without_keys(text), image
        posts_text, posts_mask = image_posts(image_rows, text, text_mask)
        text_x, scores["text_to_image"] = text_to_image(posts_text, image, posts_mask, image_mask,
                                                        previous.get("text_to_image"))
        image_x, scores["image_to_text"] = image_to_text(image, posts_text, image_mask, posts_mask,
                                                         previous.get("image_to_text"))
        if len(image) != len(text):
            text_x = text_to_image.without_keys(text).index_copy(0, image_rows, text_x)
        return text_x, image_x


class FusionLayer(nn.Module):
    """Self-attention over the concatenated text+image sequence, then a GELU FFN."""

    def __init__(self, config: RADMConfig, first: bool) -> None:
        super().__init__()
        self.attention = AttentionBlock(config, first)
        self.ffn = FeedForwardBlock(config)

    def forward(self, fused: Tensor, mask: Tensor, previous: Scores | None = None) -> tuple[Tensor, Scores]:
        fused, scores = self.attention(fused, fused, mask, mask, (previous or {}).get("fusion"))
        return self.ffn(fused), {"fusion": scores}
