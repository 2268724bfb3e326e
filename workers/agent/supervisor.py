"""`monitor worker --concurrency N`: N worker processes on one host, one consumer group.

Each child is a plain `monitor worker` with its own `METRICS_PORT` (consecutive ports), exactly what
`docker compose up --scale worker=N` runs. Signals are forwarded, so SIGTERM drains every child's
in-flight batch, and SIGHUP makes every child re-read its model checkpoint (`workers.agent.model_switch`).
If one child dies the others are stopped and the supervisor exits with its status:
the host's process manager (compose `restart:`, systemd) restarts the set, instead of the host
silently running fewer workers than it was given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from core.logging import get_logger

log = get_logger(__name__)

STOP_TIMEOUT_S = 60.0


def child_env(index: int, metrics_port: int) -> dict[str, str]:
    port = 0 if metrics_port == 0 else metrics_port + index
    return {**os.environ, "METRICS_PORT": str(port)}


def run_workers(concurrency: int, metrics_port: int) -> int:
    """Start `concurrency` workers, wait for a signal or a child's exit; returns the exit status."""
    children = [
        subprocess.Popen([sys.executable, "-m", "monitor", "worker"], env=child_env(i, metrics_port))
        for i in range(concurrency)
    ]
    log.info("worker processes started", pids=[c.pid for c in children], metrics_port=metrics_port or None)
    stopping = False

    def forward(signum: int, _frame) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    def reload(signum: int, _frame) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, reload)
    while not stopping and all(child.poll() is None for child in children):
        time.sleep(0.2)
    if not stopping:
        failed = next(child for child in children if child.poll() is not None)
        log.error("a worker process exited; stopping the others", pid=failed.pid, status=failed.returncode)
        forward(signal.SIGTERM, None)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker did not stop in time; killing it", pid=child.pid)
            child.kill()
            child.wait()
    statuses = [child.returncode for child in children]
    return 0 if stopping and all(s in (0, -signal.SIGTERM, -signal.SIGINT) for s in statuses) else 1
