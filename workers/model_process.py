"""The model in a process of its own, so it never waits for the GIL.

A worker's event loop (Faust, aiokafka) and its decode threads hold the GIL much of the time, and a
PyTorch forward pass takes and releases the GIL around every operator, so a small model in the
worker's process spends much of its time waiting (README, "Performance": 1.11x from moving it). Here
the model runs in a spawned child process; the worker sends each batch's texts and decoded images
(uint8, a quarter of float32's bytes) and gets label probabilities back, then assembles the results
itself. The child ignores SIGINT/SIGTERM: the worker finishes its in-flight batches and then stops it;
if the worker is SIGKILLed, the child notices within a second and exits.
If the child dies, `predict` raises `BrokenProcessPool` and the worker crashes (it is restarted and
its uncommitted posts are redelivered) instead of dead-lettering good posts.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from monitor.logging import configure_logging, get_logger
from monitor.settings import Settings
from schemas import Post, SentimentResult
from workers.inference import (
    Decoded,
    SentimentModel,
    decode_post,
    model_threads,
    schema_labels,
    sentiment_results,
)
from workers.radm import RADMConfig

log = get_logger(__name__)

Packed = list[tuple[str, np.ndarray | None]]
"""A batch on its way to the child: texts and uint8 CHW images."""

_model: SentimentModel | None = None
"""The child's model (set by `_load`, the pool's initializer)."""


def _exit_with_parent(parent: int) -> None:
    """A worker killed with SIGKILL cannot stop its model process: this thread notices the orphaning and exits."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _load(settings: Settings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker decides when this process stops
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="parent-watch", daemon=True).start()
    configure_logging(settings.log_level, settings.log_json)
    global _model
    _model = SentimentModel.load(settings.model_checkpoint, settings.device, compile=settings.model_compile)
    torch.set_num_threads(model_threads(_model.model, settings.model_threads))


def _describe() -> dict:
    assert _model is not None
    return {"config": _model.config.to_dict(), "version": _model.version, "device": str(_model.device),
            "threads": torch.get_num_threads()}


def _score(packed: Packed) -> list[list[float]]:
    assert _model is not None
    decoded = [(text, None if image is None else image.astype(np.float32) / 255.0) for text, image in packed]
    return _model.score(decoded)


def pack(decoded: Sequence[Decoded]) -> Packed:
    """Decoded images are k/255 values of 8-bit pixels, so the uint8 round trip is exact."""
    return [(text, None if image is None else np.rint(image * 255.0).astype(np.uint8)) for text, image in decoded]


class ModelProcess:
    """What the worker needs of a model (config, labels, version, device, decode, predict), served by a child
    process that owns the network."""

    def __init__(self, settings: Settings) -> None:
        started = time.perf_counter()
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_load,
                                        initargs=(settings,))
        info = self.pool.submit(_describe).result()
        self.config = RADMConfig.from_dict(info["config"])
        self.labels = schema_labels(self.config)
        self.version: str = info["version"]
        self.device = torch.device(info["device"])
        log.info("model process ready", seconds=round(time.perf_counter() - started, 1), threads=info["threads"])

    def decode(self, post: Post, max_pixels: int) -> Decoded:
        return decode_post(post, self.config.image_size, max_pixels)

    def predict(self, posts: Sequence[Post], decoded: Sequence[Decoded]) -> list[SentimentResult]:
        started = time.perf_counter()
        probabilities = self.pool.submit(_score, pack(decoded)).result()
        return sentiment_results(posts, probabilities, self.labels, self.version, started)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
