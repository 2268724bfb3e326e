"""Integrated gradients over a post's word embeddings (Captum), merged into the words of the post as written.

Attributions explain the model, not the truth: they say which words moved this model's score for the label it
chose, measured against a baseline text in which every word piece is `[MASK]` (the special tokens stay, so the
baseline is "a post of the same length with nothing readable in it"). A word's value is the sum over its pieces
of the change it makes to the label's logit along the straight path from that baseline to the post; the values
are scaled so that the largest magnitude is 1. Positive = towards the label, negative = against it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from captum.attr import LayerIntegratedGradients
from torch import Tensor

from core.logging import get_logger
from schemas import Post
from workers.explain.words import ModelWords, model_words, token_words
from workers.inference.model import SentimentModel
from workers.media.images import decode_image
from workers.radm import RADM

log = get_logger(__name__)

N_STEPS = 32
"""Integration steps: enough for a small convergence delta on the shipped checkpoint, few enough for a CPU."""
INTERNAL_BATCH = 32
"""Interpolated inputs per forward pass: all steps of a short post in one pass."""
MAX_IMAGE_PIXELS = 40_000_000
"""The worker's default decompression-bomb guard (MAX_IMAGE_PIXELS); stored thumbnails are far smaller."""


@dataclass(frozen=True)
class WordAttribution:
    """One whitespace-separated word of the post: `text == post.text[start:end]`."""

    text: str
    start: int
    end: int
    attribution: float
    """In [-1, 1]: + towards the label, - against it; the largest magnitude in the post is 1 (0 if it has none)."""
    tokens: int
    """Word pieces the model read of it; 0 = past the model's token limit (or nothing readable), so no attribution."""


@dataclass(frozen=True)
class ModalityBalance:
    """The explained label's probability from the text alone, the image alone and both (what the worker scored)."""

    text_only: float
    image_only: float
    both: float
    text_label: str
    image_label: str
    image_text_disagree: bool


@dataclass(frozen=True)
class Explanation:
    label: str
    probabilities: dict[str, float]
    words: list[WordAttribution]
    modality: ModalityBalance | None
    """Only for a post with both text and an image."""
    convergence_delta: float
    """Captum's completeness gap: summed raw attributions minus the logit's change from the baseline."""
    scale: float
    """The raw attribution (in logit units) that 1.0 stands for: the largest word's magnitude."""
    logit_change: float
    """The label's logit on the post minus on the baseline text (what the raw attributions add up to)."""
    truncated: bool
    """Whether the text ran past the model's token limit (later words have `tokens == 0`)."""
    model_version: str
    n_steps: int


@contextlib.contextmanager
def text_gradients(model: RADM) -> Iterator[None]:
    """Let gradients flow through a frozen text encoder, which `RADM.encode_text` otherwise runs under no_grad:
    attributions on the word embeddings need them. Restored afterwards; callers explain one post at a time."""
    config = model.config
    if config.freeze_text_encoder:
        model.config = config.replace(freeze_text_encoder=False)
    try:
        yield
    finally:
        model.config = config


class CachedImage(torch.nn.Module):
    """Stands in for the image encoder while a post's interpolated texts run: its image's tokens, computed once."""

    whole_batch_only = False

    def __init__(self, states: Tensor) -> None:
        super().__init__()
        self.states = states

    def forward(self, pixel_values: Tensor) -> Tensor:
        return self.states.expand(len(pixel_values), *self.states.shape[1:])


@contextlib.contextmanager
def image_once(model: RADM, pixel_values: Tensor, has_image: Tensor) -> Iterator[None]:
    """Encode the post's image once for all integration steps (only the text changes along the path), instead
    of once per step. Restored afterwards; callers explain one post at a time."""
    if not bool(has_image.any()):
        yield
        return
    encoder = model.image_encoder
    with torch.no_grad():
        states = encoder(pixel_values[:1])
    model.image_encoder = CachedImage(states)
    try:
        yield
    finally:
        model.image_encoder = encoder


class Explainer:
    """Explains posts with one loaded model (on the CPU, one post at a time)."""

    def __init__(self, model: SentimentModel, n_steps: int = N_STEPS, internal_batch_size: int = INTERNAL_BATCH,
                 max_image_pixels: int = MAX_IMAGE_PIXELS) -> None:
        self.model = model
        self.n_steps = n_steps
        self.internal_batch_size = internal_batch_size
        self.max_image_pixels = max_image_pixels
        tokenizer = model.processor.tokenizer
        self.baseline_id: int = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else \
            model.processor.pad_id
        self.integrated = LayerIntegratedGradients(self._logits, model.model.text_encoder.word_embeddings())

    @classmethod
    def load(cls, checkpoint: str | Path | None, device: str = "cpu") -> Explainer:
        """The torch runtime of `checkpoint` (a MODEL_CHECKPOINT value): gradients need torch, not ONNX."""
        return cls(SentimentModel.load(checkpoint, device))

    @property
    def version(self) -> str:
        return self.model.version

    def explain(self, post: Post) -> Explanation:
        """The label the worker would give `post`, each word's attribution for it and, with an image, how the text
        and the image lean on their own."""
        image = decode_image(post.image, self.model.config.image_size, self.max_image_pixels) \
            if post.image is not None else None
        has_text = bool(post.text.strip())
        probabilities = self._probabilities(post.text, image, has_text)
        labels = [label.value for label in self.model.labels]
        target = int(np.argmax(probabilities[0]))
        words = model_words(post.text, self.model.processor.normalise_text)
        scores, delta, change, truncated, pieces = self._attribute(post.text, words, image, target) if has_text \
            else ([0.0] * len(words.spans), 0.0, 0.0, False, [0] * len(words.spans))
        largest = max((abs(s) for s in scores), default=0.0)
        explained = [WordAttribution(post.text[start:end], start, end, score / largest if largest else 0.0, count)
                     for (start, end), score, count in zip(words.spans, scores, pieces, strict=True)]
        modality = None
        if image is not None and has_text:
            text_only, image_only = probabilities[2], probabilities[1]
            text_label, image_label = labels[int(np.argmax(text_only))], labels[int(np.argmax(image_only))]
            modality = ModalityBalance(float(text_only[target]), float(image_only[target]),
                                       float(probabilities[0][target]), text_label, image_label,
                                       text_label != image_label)
        log.debug("post explained", post_id=post.post_id, label=labels[target], words=len(explained),
                  delta=round(delta, 4))
        return Explanation(labels[target], dict(zip(labels, map(float, probabilities[0]), strict=True)), explained,
                           modality, delta, largest, change, truncated, self.version, self.n_steps)

    def _probabilities(self, text: str, image: np.ndarray | None, has_text: bool) -> np.ndarray:
        """Calibrated probabilities as the worker computes them: row 0 the post; with an image and text, rows 1
        and 2 the image alone (blank text) and the text alone (no image)."""
        texts, images = [text], [image]
        if image is not None and has_text:
            texts, images = [text, "", text], [image, image, None]  # image rows first, as buckets have them
        batch = self.model.processor.encode(texts, images)
        with torch.inference_mode():
            return self.model.bucket_probabilities(batch, int(batch["has_image"].sum())).numpy()

    def _logits(self, input_ids: Tensor, attention_mask: Tensor, pixel_values: Tensor, has_image: Tensor) -> Tensor:
        return self.model.model(input_ids, attention_mask, pixel_values, has_image).float()

    def _attribute(self, text: str, words: ModelWords, image: np.ndarray | None,
                   target: int) -> tuple[list[float], float, float, bool, list[int]]:
        """Raw per-word attributions, the convergence delta, the logit's change, whether the text was cut, and
        how many pieces of each word the model read."""
        processor = self.model.processor
        encoding = processor.encoder.encode(words.text)
        if encoding.ids != processor.encoder.encode(processor.normalise_text(text)).ids \
                if processor.normalise_text is not None else encoding.ids != processor.encoder.encode(text).ids:
            log.warning("word-by-word normalisation differs from the worker's; attributions describe a slightly "
                        "different text")
        batch = processor.encode([words.text], [image])
        input_ids = torch.tensor([encoding.ids])
        attention_mask = torch.ones_like(input_ids)
        special = torch.tensor([encoding.special_tokens_mask], dtype=torch.bool)
        baseline = torch.where(special, input_ids, torch.full_like(input_ids, self.baseline_id))
        device = self.model.device
        inputs = (input_ids.to(device), baseline.to(device))
        extra = (attention_mask.to(device), batch["pixel_values"].to(device, self.model.dtype),
                 batch["has_image"].to(device))
        radm = self.model.model
        with torch.enable_grad(), text_gradients(radm), image_once(radm, extra[1], extra[2]):
            attributions, delta = self.integrated.attribute(
                inputs[0], baselines=inputs[1], target=target, additional_forward_args=extra, n_steps=self.n_steps,
                internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
            with torch.no_grad():
                logits = self._logits(torch.cat(inputs), attention_mask.repeat(2, 1).to(device),
                                      extra[1].repeat(2, 1, 1, 1), extra[2].repeat(2))
        per_token = attributions.sum(-1)[0].detach().float().cpu().tolist()
        scores, pieces = [0.0] * len(words.spans), [0] * len(words.spans)
        for owner, score in zip(token_words(words, encoding.offsets, encoding.special_tokens_mask), per_token,
                                strict=True):
            if owner is not None:
                scores[owner] += score
                pieces[owner] += 1
        truncated = bool(encoding.overflowing)
        change = float(logits[0, target] - logits[1, target])
        return scores, float(delta.item()), change, truncated, pieces
