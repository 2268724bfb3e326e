"""Reconnection waits: exponential with full jitter, so many connectors dropped at once do not return at once."""

from __future__ import annotations

import random


class Backoff:
    """`next()` gives the wait before the next attempt: uniform in [0, min(maximum, initial * 2^failures)]."""

    def __init__(self, initial_s: float, maximum_s: float, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.maximum_s = maximum_s
        self.failures = 0
        self._rng = rng or random.Random()

    def next(self) -> float:
        ceiling = min(self.maximum_s, self.initial_s * 2 ** min(self.failures, 32))
        self.failures += 1
        return self._rng.uniform(0, ceiling)

    def reset(self) -> None:
        """After a connection that delivered events: the next drop starts from short waits again."""
        self.failures = 0
