"""Multi-Head Residual Attention (MHRA): attention whose pre-softmax scores carry over between layers.

RealFormer adds layer l-1's raw scores to layer l's. RADM makes that adaptive: a gate, computed by a
fully connected layer from the per-head cosine similarity of the current and previous score maps,
decides how much of the previous scores to keep; the kept part is averaged with the current scores:

    kept  = g * previous + (1 - g) * current,          g = sigmoid(FC(cos(current, previous))) in [0, 1]
    mixed = (current + kept) / 2 = (1 - g/2) * current + (g/2) * previous

g = 0 is plain attention, g = 1 RealFormer-style averaging. `mixed` is what flows on to the next layer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def real_pairs(query_mask: Tensor | None, key_mask: Tensor | None) -> Tensor | None:
    """Which (query, key) pairs of a (B, H, Lq, Lk) score map are real, broadcastable to it; None when all are
    (an image's tokens have no padding: a mask of ones would only cost passes over the largest score maps)."""
    queries = None if query_mask is None else query_mask[:, None, :, None]
    keys = None if key_mask is None else key_mask[:, None, None, :]
    if queries is None or keys is None:
        return keys if queries is None else queries
    return queries & keys


def masked_cosine(current: Tensor, previous: Tensor, query_mask: Tensor | None, key_mask: Tensor | None) -> Tensor:
    """Per-head cosine similarity of two (B, H, Lq, Lk) score maps over real (query, key) pairs -> (B, H).

    Padding pairs are left out so that padding can never move the gate.
    """
    keep = real_pairs(query_mask, key_mask)
    if keep is not None:
        keep = keep.to(current.dtype)
        current, previous = current * keep, previous * keep
    return nn.functional.cosine_similarity(current.flatten(2), previous.flatten(2), dim=-1, eps=1e-6)


class ScoreGate(nn.Module):
    """FC layer from the heads' similarities to one keep-gate per head."""

    def __init__(self, heads: int) -> None:
        super().__init__()
        self.fc = nn.Linear(heads, heads)

    def forward(self, current: Tensor, previous: Tensor, query_mask: Tensor | None,
                key_mask: Tensor | None) -> Tensor:
        similarity = masked_cosine(current, previous, query_mask, key_mask)
        return torch.sigmoid(self.fc(similarity))[..., None, None]


class ResidualMultiHeadAttention(nn.Module):
    """Multi-head attention over `keys` for `queries`, returning its output and its (mixed) raw scores.

    query_mask (B, Lq) / key_mask (B, Lk): bool, True = a real token, or None when every token is real (an
    image's). A query row with no real key gets a zero context (no NaN): that is how a post without text or
    without an image stays harmless.

    The score maps (B, H, Lq, Lk) are the largest tensors of the interaction layers, and every elementwise pass
    over them is paid in memory traffic: the scale is applied to the queries, masks only where a token can be
    padding, and a row without any real key is zeroed on its context, not on its probabilities.
    """

    def __init__(self, hidden: int, heads: int, dropout: float, residual: bool) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.scale = 1 / math.sqrt(self.head_dim)
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))
        self.output = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.gate = ScoreGate(heads) if residual else None

    def zero_context(self, queries: Tensor) -> Tensor:
        """What `forward` returns for queries with no real key: a zero context through the output projection."""
        return self.output.bias.expand_as(queries)

    def _split(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        return x.view(batch, length, self.heads, self.head_dim).transpose(1, 2)

    def forward(
        self,
        queries: Tensor,
        keys: Tensor,
        query_mask: Tensor | None,
        key_mask: Tensor | None,
        previous_scores: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        q = self._split(self.query(queries) * self.scale)
        k, v = self._split(self.key(keys)), self._split(self.value(keys))
        scores = q @ k.transpose(-1, -2)
        if self.gate is not None and previous_scores is not None:
            keep = self.gate(scores, previous_scores, query_mask, key_mask)
            scores = torch.lerp(scores, previous_scores, keep / 2)  # (1 - g/2) * current + (g/2) * previous
        logits = scores
        if key_mask is not None:
            logits = scores.masked_fill(~key_mask[:, None, None, :], torch.finfo(scores.dtype).min)
        probabilities = self.dropout(torch.softmax(logits, dim=-1))  # a masked key's probability is exactly 0
        context = probabilities @ v
        if key_mask is not None:  # a row of masked keys only: uniform probabilities, so a zero context instead
            context = context * key_mask.any(-1).to(context.dtype)[:, None, None, None]
        return self.output(context.transpose(1, 2).flatten(2)), scores
