"""Run the installed `monitor` command against the test stack, as an analyst or operator would."""

from __future__ import annotations

import os
import subprocess
import sys


def monitor(stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **stack.env(), "LOG_LEVEL": "WARNING", **(env or {})}
    return subprocess.run([sys.executable, "-m", "monitor", *args], env=full_env, capture_output=True, text=True,
                          timeout=120)
