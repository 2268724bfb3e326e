"""Progress bars that suit where the output goes: live in a terminal, a few lines in a log or a CI job."""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

LOG_INTERVAL_S = 10.0
"""Off a terminal every redraw is a new line: at most one every this many seconds (plus the first and last)."""


def progress_bar(iterable: Any = None, **options: Any) -> tqdm:
    """`tqdm`, redrawn as often as a terminal likes, or rarely when stderr is a file or a pipe."""
    if not sys.stderr.isatty():
        options.setdefault("mininterval", LOG_INTERVAL_S)
        options.setdefault("maxinterval", LOG_INTERVAL_S * 3)
    return tqdm(iterable, **options)
