"""The words of a post as written, and where each one lands in the text the model reads.

The model reads the text after its checkpoint's normalisation (`social-1` turns emoji into their names, hashtags
into words, URLs into `http`), so the tokenizer's offsets point into that text, not the post. Normalising each
whitespace-separated word on its own, and joining the results with single spaces, gives the same text wherever the
normalisation never looks across whitespace (true of `social-1`: its patterns stop at whitespace), and keeps the
link from every word piece back to the word it came from. A word is therefore a maximal run of non-space
characters of the original text, punctuation attached to it included: `great!!!` is one word, and an emoji or a
hashtag counts as the one word it was in the post, however many words its normalised form has.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ModelWords:
    """A post's words: their spans in the post (`spans`) and in the text the model reads (`model_spans`)."""

    text: str
    """What the tokenizer is given: each word normalised on its own, joined by single spaces."""
    spans: list[tuple[int, int]]
    model_spans: list[tuple[int, int]]


def model_words(text: str, normalise: Callable[[str], str] | None) -> ModelWords:
    """Split `text` into words and build the model's text from them, word by word."""
    spans = [(m.start(), m.end()) for m in WORD.finditer(text)]
    parts: list[str] = []
    model_spans: list[tuple[int, int]] = []
    position = 0
    for start, end in spans:
        piece = text[start:end]
        piece = normalise(piece) if normalise is not None else piece
        if piece and parts:
            position += 1  # the joining space
        model_spans.append((position, position + len(piece)))
        if piece:
            parts.append(piece)
            position += len(piece)
    return ModelWords(" ".join(parts), spans, model_spans)


def token_words(words: ModelWords, offsets: Sequence[tuple[int, int]], special: Sequence[int]) -> list[int | None]:
    """For each token, the index of the word it is a piece of (None for special tokens such as [CLS])."""
    starts = [start for start, _ in words.model_spans]
    owners: list[int | None] = []
    for (start, end), is_special in zip(offsets, special, strict=True):
        if is_special or end <= start:
            owners.append(None)
            continue
        # The last word starting at or before the piece; empty words (nothing left after normalising) share a
        # start with the next word, and bisect_right skips past them.
        owners.append(max(0, bisect.bisect_right(starts, start) - 1) if starts else None)
    return owners
