"""A replacement model for a running worker: loaded where the worker's model runs, and checked before it serves.

Everything here blocks (loading a checkpoint, starting a model process, a probe batch): the worker calls it on a
thread, never on its event loop, which keeps consuming, scoring with the old model and heartbeating meanwhile.
A candidate that fails any check is closed again and reported as `ModelRefused`, so the old model keeps serving.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from PIL import Image

from core.digest import file_sha256
from core.settings import ModelSettings
from schemas import LABELS, Post
from workers.inference.child import ModelProcess
from workers.inference.model import Decoded, resolve_checkpoint
from workers.inference.predictor import Predictor
from workers.inference.runtime import load_worker_model

PROBE = Post(post_id="model-swap-probe", created_at=datetime(2026, 1, 1, tzinfo=UTC),
             text="Checking the new model before it serves: love the update, hate the wait.")
"""A tiny text post: one prediction on it proves the network runs end to end before real posts reach it."""

PROBE_TIMEOUT_S = 120.0


class ModelRefused(RuntimeError):
    """A candidate checkpoint did not load or failed a check; the worker keeps its model."""


def open_model(settings: ModelSettings, log_level: str = "INFO", log_json: bool = False) -> Predictor:
    """In a process of its own (MODEL_PROCESS, the default: no GIL shared with Kafka and decoding) or here."""
    if settings.own_process:
        return ModelProcess(settings, log_level, log_json)
    return load_worker_model(settings)


def close_model(model: Predictor) -> None:
    """End a model's process once the batches already in it are answered; an in-process model just goes."""
    close = getattr(model, "close", None)
    if callable(close):
        close()


def validate(model: Predictor, expected_id: str | None, max_pixels: int) -> None:
    """The checks a candidate must pass: the id it was assigned (if any), the sentiment labels, and one probe
    prediction that yields one probability per label, summing to 1. Raises ModelRefused."""
    if expected_id is not None and model.version != expected_id:
        raise ModelRefused(f"the checkpoint loads as model {model.version!r}, not the expected {expected_id!r}")
    if sorted(model.labels) != sorted(LABELS):
        raise ModelRefused(f"labels {[str(label) for label in model.labels]} are not the sentiment labels "
                           f"{[str(label) for label in LABELS]}")
    try:
        probabilities = model.submit([model.decode(PROBE, max_pixels)]).result(PROBE_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - whatever the probe raises, the candidate is unfit to serve
        raise ModelRefused(f"the probe prediction failed: {exc!r}") from None
    if (len(probabilities) != 1 or len(probabilities[0]) != len(model.labels)
            or not all(math.isfinite(p) for p in probabilities[0]) or abs(sum(probabilities[0]) - 1) > 1e-3):
        raise ModelRefused(f"the probe prediction is not a probability per label: {probabilities!r}")


def load_candidate(settings: ModelSettings, checkpoint: str, expected_id: str | None, max_pixels: int,
                   log_level: str = "INFO", log_json: bool = False) -> Predictor:
    """`checkpoint` loaded as the worker would serve it (same device, runtime and process model) and validated.
    Raises ModelRefused, with the candidate closed again."""
    candidate = settings.model_copy(update={"checkpoint": checkpoint})
    try:
        model = open_model(candidate, log_level, log_json)
    except Exception as exc:  # noqa: BLE001 - a corrupt file, a missing path, a bad config: all refusals
        raise ModelRefused(f"checkpoint {checkpoint!r} did not load: {exc}") from None
    try:
        validate(model, expected_id, max_pixels)
    except BaseException:
        close_model(model)
        raise
    return model


def checkpoint_holds(checkpoint: str, model_id: str) -> bool:
    """Whether the file at `checkpoint` is still the one `model_id` was computed from (its sha256 prefix), without
    loading it: SIGHUP and repeated assignments of one path reload only a file that changed. False when the file
    cannot be read (loading it then says why)."""
    path = resolve_checkpoint(checkpoint)
    if path is None:
        return model_id.endswith("-untrained")
    try:
        return model_id.endswith(f"@{file_sha256(path)[:12]}")
    except OSError:
        return False


def fit_images(decoded: Sequence[Decoded], image_size: int) -> Sequence[Decoded]:
    """A batch decoded for the model before a swap, at the new model's image size: only batches decoded before a
    swap and scored after it differ, so the common case returns `decoded` itself after a shape check per image."""
    if all(image is None or image.shape[0] == image_size for _, image in decoded):
        return decoded
    return [(text, image if image is None or image.shape[0] == image_size else
             np.asarray(Image.fromarray(image).resize((image_size, image_size), Image.Resampling.BILINEAR)))
            for text, image in decoded]
