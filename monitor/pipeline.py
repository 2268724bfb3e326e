"""Run the worker and sink as child processes, the way ops run them: `monitor worker`, `monitor sink`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.db import post_sentiment


@dataclass
class ChildProcess:
    role: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = field(default=None, init=False)

    def start(self) -> ChildProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen([sys.executable, "-m", "monitor", self.role], env={**os.environ, **self.env},
                                         stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.role} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 20.0) -> None:
        """SIGTERM: Faust finishes the in-flight batch and commits offsets before exiting."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash (OOM killer, power loss) with no chance to finish a batch or commit offsets."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self) -> ChildProcess:
        """Start a fresh process in the same role and environment (after stop() or kill())."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_bytes(self) -> int:
        """Resident memory of the running process (Linux /proc), 0 when it is not running."""
        if not self.running:
            return 0
        assert self.proc is not None
        try:
            status = Path(f"/proc/{self.proc.pid}/status").read_text()
        except FileNotFoundError:
            return 0
        kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
        return int(kib) * 1024

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


async def stored_post_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        try:
            return (await conn.execute(select(func.count()).select_from(post_sentiment))).scalar_one()
        except Exception:  # noqa: BLE001 - the sink creates the table on start; until then nothing is stored
            await conn.rollback()
            return 0


async def wait_for_posts(engine: AsyncEngine, expected: int, children: list[ChildProcess], timeout_s: float,
                         on_progress=None) -> int:
    """Poll PostgreSQL until `expected` posts are stored; fail fast if a child process died."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    stored = 0
    while time.monotonic() < deadline:
        for child in children:
            child.check_alive()
        stored = await stored_post_count(engine)
        if on_progress:
            on_progress(stored)
        if stored >= expected:
            return stored
        await asyncio.sleep(0.25)
    raise TimeoutError(f"only {stored} of {expected} posts stored after {timeout_s}s")
