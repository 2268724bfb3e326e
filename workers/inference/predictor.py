"""The one interface the worker scores through, whether the network runs in this process or in a child."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from typing import Protocol, runtime_checkable

import torch

from schemas import Label, Post, SentimentResult
from workers.inference.model import Decoded
from workers.radm import RADMConfig


@runtime_checkable
class Predictor(Protocol):
    """What the worker needs of a model: its config, labels, version and device, a CPU-side `decode` of one post
    (safe on any thread), and `submit`, which queues a batch and returns its probabilities' future.
    `SentimentModel` (in process) and `ModelProcess` (a child process) both satisfy it."""

    @property
    def config(self) -> RADMConfig: ...

    labels: tuple[Label, ...]
    version: str
    device: torch.device

    def decode(self, post: Post, max_pixels: int) -> Decoded: ...

    def submit(self, decoded: Sequence[Decoded]) -> Future[list[list[float]]]: ...

    def predict(self, posts: Sequence[Post], decoded: Sequence[Decoded]) -> list[SentimentResult]: ...
