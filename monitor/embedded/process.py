"""A server binary run as a child process: free port, readiness wait, clean stop, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.logging import get_logger

log = get_logger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class ServiceStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


@dataclass
class ServerProcess:
    """One embedded server. `argv` must make it listen on `host:port`."""

    name: str
    argv: Sequence[str]
    port: int
    log_path: Path
    host: str = "127.0.0.1"
    user: str | None = None
    ready_probe: Callable[[], bool] | None = None
    startup_timeout_s: float = 30.0
    stop_signal: int = signal.SIGTERM
    """The server's "shut down now" signal (PostgreSQL's SIGTERM waits for every client to leave)."""
    env: dict[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start the server and block until it accepts connections (and passes its probe)."""
        if self.running:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            list(self.argv), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            user=self.user, env={**os.environ, **self.env}, start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServiceStartError(f"{self.name} exited with {self._proc.returncode}:\n{self.log_tail()}")
            if port_open(self.host, self.port) and (self.ready_probe is None or self._probe()):
                log.info("service ready", service=self.name, port=self.port, pid=self._proc.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceStartError(f"{self.name} not ready after {self.startup_timeout_s}s:\n{self.log_tail()}")

    def _probe(self) -> bool:
        try:
            return bool(self.ready_probe())  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
            return False

    def stop(self, timeout_s: float = 10.0, sig: int | None = None) -> None:
        """Ask the server to stop; kill it if it does not within `timeout_s`. The port stays the same for start()."""
        if not self.running:
            return
        assert self._proc is not None
        self._proc.send_signal(sig or self.stop_signal)
        try:
            self._proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("service did not stop, killing", service=self.name)
            self._proc.kill()
            self._proc.wait()
        log.info("service stopped", service=self.name)

    def kill(self) -> None:
        """SIGKILL, no clean-up: a crash, for fault-injection tests."""
        if self.running:
            assert self._proc is not None
            self._proc.kill()
            self._proc.wait()
            log.info("service killed", service=self.name)

    def restart(self) -> None:
        """Stop, then start on the same port, so clients that reconnect find it where it was."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
