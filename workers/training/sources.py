"""Where a training batch's logits come from: the full model on raw posts, or cached frozen-encoder outputs.

A trained text encoder with a frozen image encoder runs live on the text and replays each image file's
cached features (`LiveSource` with a model). When only the text encoder's top layers train
(`frozen_text_layers`), `PartialSource` runs the frozen bottom once per text and replays its states into the
top layers, which then train on exactly what the live encoder would feed them.

With both encoders frozen their outputs never change, so `CachedSource` runs them once per text and
once per distinct image file, keeps the outputs (fp16, text without padding) and, while attached,
swaps the encoders for modules that hand those outputs back. Everything after the encoders (the
projections, MHRA layers, fusion, classifier) is RADM's own forward, so training on the cache trains
exactly the network the worker runs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from tqdm.auto import tqdm

from core.logging import get_logger
from workers.media.images import upright
from workers.radm import RADM
from workers.radm.encoders import image_token_count
from workers.radm.processor import RADMProcessor
from workers.training.examples import Example

log = get_logger(__name__)


def load_image(path: Path) -> np.ndarray | None:
    """uint8 RGB array, or None (logged) when the file is missing or not an image: one bad file in a
    scraped data set should cost one image, not the run."""
    try:
        with Image.open(path) as image:
            return np.asarray(upright(image).convert("RGB"))  # as the worker turns the photos it scores
    except (OSError, ValueError) as exc:
        log.warning("image skipped", path=str(path), error=str(exc))
        return None


class BatchSource(Protocol):
    labels: Tensor

    def __len__(self) -> int: ...

    def attach(self, model: RADM) -> contextlib.AbstractContextManager[None]: ...

    def logits(self, model: RADM, indices: Sequence[int], device: torch.device) -> Tensor: ...


class LiveSource:
    """Tokenise per batch and run the text encoder live (it is being trained, or no cache is wanted).

    With `cache_images` and a frozen image encoder, each distinct image file is encoded once up front and
    replayed, so photos cost nothing per epoch; otherwise images are loaded and encoded per batch.
    """

    def __init__(self, processor: RADMProcessor, examples: Sequence[Example], model: RADM | None = None,
                 device: torch.device | None = None, desc: str = "images") -> None:
        self.processor = processor
        self.examples = list(examples)
        self.labels = torch.tensor([e.label for e in self.examples], dtype=torch.long)
        self.image_cache: tuple[Tensor, Tensor] | None = None
        if model is not None and model.config.freeze_image_encoder:
            self.image_cache = encode_image_files(model, processor, self.examples, device or torch.device("cpu"),
                                                  desc=desc)

    def __len__(self) -> int:
        return len(self.examples)

    @contextlib.contextmanager
    def attach(self, model: RADM) -> Iterator[None]:
        if self.image_cache is None:
            yield
            return
        image_encoder = model.image_encoder
        model.image_encoder = _Replay(image_encoder.width)
        try:
            yield
        finally:
            model.image_encoder = image_encoder

    def logits(self, model: RADM, indices: Sequence[int], device: torch.device) -> Tensor:
        batch = [self.examples[i] for i in indices]
        if self.image_cache is None:
            images = [load_image(e.image) if e.image is not None else None for e in batch]
            inputs = self.processor.encode([e.text for e in batch], images)
            return model(**{k: v.to(device) for k, v in inputs.items()})
        if not isinstance(model.image_encoder, _Replay):
            raise RuntimeError("call inside `with source.attach(model):`")
        tokens = self.processor.tokenize([e.text for e in batch])
        has_image, image = replayed_images(*self.image_cache, torch.as_tensor(list(indices), dtype=torch.long))
        model.image_encoder.value = image.to(device)
        try:
            return model(tokens["input_ids"].to(device), tokens["attention_mask"].to(device),
                         torch.zeros(len(batch), 1, 1, 1, device=device), has_image.to(device))
        finally:
            model.image_encoder.value = None


class _Replay(nn.Module):
    """Stands in for a frozen encoder: returns whatever the source put in `value` for this batch."""

    whole_batch_only = True
    """It replays the whole batch's features, so RADM must not call it on the rows with an image only."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.value: Tensor | None = None

    def forward(self, *_: Tensor) -> Tensor:
        if self.value is None:
            raise RuntimeError("no cached features set for this batch")
        return self.value


def _capture(module: nn.Module, store: dict[str, Tensor], key: str):
    return module.register_forward_hook(lambda _m, _i, output: store.__setitem__(key, output.detach()))


@torch.no_grad()
def encode_image_files(model: RADM, processor: RADMProcessor, examples: Sequence[Example], device: torch.device,
                       batch_size: int = 64, dtype: torch.dtype = torch.float16,
                       desc: str = "cache") -> tuple[Tensor, Tensor]:
    """The frozen image encoder's output once per distinct image file of `examples`: (features (F, P, D),
    index (N,) into them per example, -1 where an example has no usable image)."""
    paths = sorted({e.image for e in examples if e.image is not None})
    index_of: dict[Path, int] = {}
    features: list[Tensor] = []
    captured: dict[str, Tensor] = {}
    handle = _capture(model.image_encoder, captured, "image")
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(paths), batch_size), desc=f"{desc}: images", unit="batch", disable=None):
            loaded = [(p, load_image(p)) for p in paths[start:start + batch_size]]
            loaded = [(p, image) for p, image in loaded if image is not None]
            if not loaded:
                continue
            pixels = torch.stack([processor.image_tensor(image) for _, image in loaded]).to(device)
            model.encode_image(pixels, torch.arange(len(loaded), device=device))
            for position, (path, _) in enumerate(loaded):
                index_of[path] = len(features)
                features.append(captured["image"][position].to("cpu", dtype).clone())
    finally:
        handle.remove()
        model.train(was_training)
    tokens = image_token_count(model.image_encoder, model.config.image_size)
    stacked = torch.stack(features) if features else torch.zeros(0, tokens, model.image_encoder.width, dtype=dtype)
    index = torch.tensor([index_of.get(e.image, -1) if e.image is not None else -1 for e in examples],
                         dtype=torch.long)
    return stacked, index


def replayed_images(features: Tensor, index: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """(has_image (B,), image encoder outputs (B, P, D) float32, zeros where a post has no image) for `rows`."""
    image_rows = index[rows]
    has_image = image_rows >= 0
    image = torch.zeros(len(rows), *features.shape[1:])
    if has_image.any():
        image[has_image] = features[image_rows[has_image]].float()
    return has_image, image


class CachedSource:
    """Frozen encoder outputs computed once; needs `freeze_text_encoder` and `freeze_image_encoder`."""

    def __init__(self, model: RADM, processor: RADMProcessor, examples: Sequence[Example], device: torch.device,
                 batch_size: int = 64, dtype: torch.dtype = torch.float16, desc: str = "cache") -> None:
        if not (model.config.freeze_text_encoder and model.config.freeze_image_encoder):
            raise ValueError("feature caching needs both encoders frozen")
        self.examples = list(examples)
        self.labels = torch.tensor([e.label for e in self.examples], dtype=torch.long)
        self.dtype = dtype
        self.text_width = model.text_encoder.width
        self.image_width = model.image_encoder.width
        self.image_tokens = image_token_count(model.image_encoder, model.config.image_size)
        was_training = model.training
        model.eval()
        started = time.perf_counter()
        try:
            self._cache_texts(model, processor, device, batch_size, desc)
            self._cache_images(model, processor, device, batch_size, desc)
        finally:
            model.train(was_training)
        log.info("encoder outputs cached", source=desc, examples=len(self.examples),
                 images=len(self.image_features), seconds=round(time.perf_counter() - started, 1))

    def __len__(self) -> int:
        return len(self.examples)

    # -- building -------------------------------------------------------------------------------------------

    @torch.no_grad()
    def _cache_texts(self, model: RADM, processor: RADMProcessor, device: torch.device, batch_size: int,
                     desc: str) -> None:
        """Per text: its encoder states over real tokens only (one row for a blank text) and its mask length."""
        count = len(self.examples)
        self.text_states: list[Tensor] = [torch.empty(0)] * count
        self.text_lengths = torch.zeros(count, dtype=torch.long)
        # Similar lengths together: little padding, so the encoder does little wasted work.
        order = sorted(range(count), key=lambda i: len(self.examples[i].text))
        captured: dict[str, Tensor] = {}
        handle = _capture(model.text_encoder, captured, "text")
        try:
            for start in tqdm(range(0, count, batch_size), desc=f"{desc}: text", unit="batch", disable=None):
                rows = order[start:start + batch_size]
                tokens = processor.tokenize([self.examples[i].text for i in rows])
                mask = tokens["attention_mask"].to(device)
                model.encode_text(tokens["input_ids"].to(device), mask)
                states = captured["text"].to("cpu", self.dtype)
                for position, row in enumerate(rows):
                    length = int(mask[position].sum())
                    self.text_lengths[row] = length
                    self.text_states[row] = states[position, :max(length, 1)].clone()
        finally:
            handle.remove()

    def _cache_images(self, model: RADM, processor: RADMProcessor, device: torch.device, batch_size: int,
                      desc: str) -> None:
        """One output per distinct image file; examples point at it by index (-1: no usable image)."""
        self.image_features, self.image_index = encode_image_files(model, processor, self.examples, device,
                                                                   batch_size, self.dtype, desc)

    def with_images(self, model: RADM, processor: RADMProcessor, examples: Sequence[Example], device: torch.device,
                    batch_size: int = 64, desc: str = "cache") -> CachedSource:
        """The same texts with other images: reuses the text outputs, encodes only the new image files."""
        if [e.text for e in examples] != [e.text for e in self.examples]:
            raise ValueError("with_images needs the same texts in the same order")
        other = CachedSource.__new__(CachedSource)
        other.__dict__.update(self.__dict__)
        other.examples = list(examples)
        other.labels = torch.tensor([e.label for e in other.examples], dtype=torch.long)
        was_training = model.training
        model.eval()
        try:
            other._cache_images(model, processor, device, batch_size, desc)
        finally:
            model.train(was_training)
        return other

    # -- serving batches ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def attach(self, model: RADM) -> Iterator[None]:
        """Swap the frozen encoders for replays while training; the real ones are back for saving."""
        text_encoder, image_encoder = model.text_encoder, model.image_encoder
        model.text_encoder, model.image_encoder = _Replay(self.text_width), _Replay(self.image_width)
        try:
            yield
        finally:
            model.text_encoder, model.image_encoder = text_encoder, image_encoder

    def logits(self, model: RADM, indices: Sequence[int], device: torch.device) -> Tensor:
        if not isinstance(model.text_encoder, _Replay) or not isinstance(model.image_encoder, _Replay):
            raise RuntimeError("call inside `with source.attach(model):`")
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        lengths = self.text_lengths[rows]
        width = max(1, int(lengths.max()))
        text = torch.zeros(len(rows), width, self.text_width)
        for position, row in enumerate(rows.tolist()):
            states = self.text_states[row]
            text[position, : states.shape[0]] = states.float()
        attention_mask = (torch.arange(width)[None, :] < lengths[:, None]).long()
        has_image, image = replayed_images(self.image_features, self.image_index, rows)
        model.text_encoder.value = text.to(device)
        model.image_encoder.value = image.to(device)
        try:
            return model(torch.zeros_like(attention_mask).to(device), attention_mask.to(device),
                         torch.zeros(len(rows), 1, 1, 1, device=device), has_image.to(device))
        finally:
            model.text_encoder.value = model.image_encoder.value = None


class _StopForward(Exception):
    """Raised by a hook once the frozen layers' output is captured: the layers above need not run."""


class PartialSource:
    """The frozen bottom of the text encoder (embeddings + `frozen_text_layers` layers) run once per text, the
    frozen image encoder once per image file; batches replay both, and the top text layers run live."""

    def __init__(self, model: RADM, processor: RADMProcessor, examples: Sequence[Example], device: torch.device,
                 batch_size: int = 64, dtype: torch.dtype = torch.float16, desc: str = "cache") -> None:
        first = model.config.frozen_text_layers
        if not (first and model.config.freeze_image_encoder and not model.config.freeze_text_encoder):
            raise ValueError("PartialSource needs frozen_text_layers, a trained text encoder and a frozen image one")
        self.first = first
        self.examples = list(examples)
        self.labels = torch.tensor([e.label for e in self.examples], dtype=torch.long)
        self.processor = processor
        self.states: list[Tensor] = [torch.empty(0)] * len(self.examples)
        started = time.perf_counter()
        was_training = model.training
        model.eval()
        try:
            self._cache_texts(model, device, batch_size, dtype, desc)
        finally:
            model.train(was_training)
        self.image_cache = encode_image_files(model, processor, self.examples, device, desc=desc)
        log.info("frozen text layers cached", source=desc, examples=len(self.examples), layers=first,
                 seconds=round(time.perf_counter() - started, 1))

    def __len__(self) -> int:
        return len(self.examples)

    @torch.no_grad()
    def _cache_texts(self, model: RADM, device: torch.device, batch_size: int, dtype: torch.dtype,
                     desc: str) -> None:
        count = len(self.examples)
        order = sorted(range(count), key=lambda i: len(self.examples[i].text))
        captured: dict[str, Tensor] = {}

        def grab(_module: nn.Module, args: tuple[Tensor, ...]) -> None:
            captured["states"] = args[0].detach()
            raise _StopForward

        layers = model.text_encoder.model.encoder.layer
        handle = layers[self.first].register_forward_pre_hook(grab) if self.first < len(layers) else None
        try:
            for start in tqdm(range(0, count, batch_size), desc=f"{desc}: text", unit="batch", disable=None):
                rows = order[start:start + batch_size]
                tokens = self.processor.tokenize([self.examples[i].text for i in rows])
                mask = tokens["attention_mask"]
                encoder_mask = mask.bool().clone()
                encoder_mask[:, 0] |= ~encoder_mask.any(1)  # as RADM.encode_text
                try:
                    states = model.text_encoder(tokens["input_ids"].to(device), encoder_mask.to(device))
                except _StopForward:
                    states = captured.pop("states")
                for position, row in enumerate(rows):
                    length = max(int(mask[position].sum()), 1)  # real tokens only (a blank text keeps one)
                    self.states[row] = (tokens["input_ids"][position, :length], mask[position, :length],
                                        states[position, :length].to("cpu", dtype).clone())
        finally:
            if handle is not None:
                handle.remove()

    @contextlib.contextmanager
    def attach(self, model: RADM) -> Iterator[None]:
        """Replay the images; the text encoder runs its top layers over the states each batch sets."""
        image_encoder = model.image_encoder
        model.image_encoder = _Replay(image_encoder.width)
        try:
            yield
        finally:
            model.image_encoder = image_encoder
            model.text_encoder.replay = None

    def logits(self, model: RADM, indices: Sequence[int], device: torch.device) -> Tensor:
        if not isinstance(model.image_encoder, _Replay):
            raise RuntimeError("call inside `with source.attach(model):`")
        batch = [self.states[i] for i in indices]
        width = max(int(mask.shape[0]) for _, mask, _ in batch)
        input_ids = torch.full((len(batch), width), self.processor.pad_id, dtype=torch.long)
        attention_mask = torch.zeros(len(batch), width, dtype=torch.long)
        states = torch.zeros(len(batch), width, model.text_encoder.width)
        for position, (ids, mask, hidden) in enumerate(batch):
            length = ids.shape[0]
            input_ids[position, :length], attention_mask[position, :length] = ids, mask
            states[position, :length] = hidden.float()
        rows = torch.as_tensor(list(indices), dtype=torch.long)
        has_image, image = replayed_images(*self.image_cache, rows)
        model.text_encoder.replay = (self.first, states.to(device))
        model.image_encoder.value = image.to(device)
        try:
            return model(input_ids.to(device), attention_mask.to(device),
                         torch.zeros(len(batch), 1, 1, 1, device=device), has_image.to(device))
        finally:
            model.text_encoder.replay = None
            model.image_encoder.value = None


def make_source(model: RADM, processor: RADMProcessor, examples: Sequence[Example], device: torch.device,
                cache: bool | None = None, desc: str = "cache") -> BatchSource:
    """Whatever is frozen is cached (unless `cache=False`): both encoders (CachedSource), the image encoder and
    the text encoder's frozen bottom layers (PartialSource), or the image encoder alone while the whole text
    encoder trains (LiveSource with replayed images)."""
    frozen = model.config.freeze_text_encoder and model.config.freeze_image_encoder
    if cache is None:
        cache = model.config.freeze_image_encoder
    if cache and frozen:
        return CachedSource(model, processor, examples, device, desc=desc)
    if cache and model.config.freeze_image_encoder and model.config.frozen_text_layers:
        return PartialSource(model, processor, examples, device, desc=desc)
    if cache and model.config.freeze_image_encoder:
        return LiveSource(processor, examples, model, device, desc=desc)
    if cache:
        log.warning("feature cache needs a frozen encoder; running them per batch")
    return LiveSource(processor, examples)
