"""Child processes (embedded servers, `monitor <role>`): free port, readiness wait, clean stop, kill, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.logging import get_logger

log = get_logger(__name__)


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it), never one this process handed out before: servers
    are often prepared together and started later, and the OS may offer a released port again meanwhile."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def stop_on_sigterm() -> None:
    """Make SIGTERM (`kill`, `docker stop`) raise KeyboardInterrupt in the main thread, as Ctrl-C does, so a
    long-running command leaves through its clean-up path and stops the servers it started."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


class ServiceStartError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


@dataclass
class ChildProcess:
    """A program run as a child process, logging to a file: an embedded server (`argv` makes it listen on
    `host:port`; `start` waits until it accepts connections and passes `ready_probe`) or a `monitor <role>`
    process (`ChildProcess.monitor`). Stop, kill -9 and restart serve the demo and the fault tests alike."""

    name: str
    argv: Sequence[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int | None = None
    host: str = "127.0.0.1"
    user: str | None = None
    ready_probe: Callable[[], bool] | None = None
    startup_timeout_s: float = 30.0
    stop_signal: int = signal.SIGTERM
    """The program's "shut down now" signal (PostgreSQL's SIGTERM waits for every client to leave)."""
    stop_timeout_s: float = 10.0
    new_session: bool = True
    """Servers get their own session, so a Ctrl-C in the terminal reaches only the parent, which stops them."""
    proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

    @classmethod
    def monitor(cls, role: str, env: dict[str, str], log_path: Path) -> ChildProcess:
        """`monitor <role>` (worker, sink, api), the way ops run it. SIGTERM lets Faust finish the in-flight
        batch and commit offsets, so it gets more time to stop than a server."""
        return cls(role, [sys.executable, "-m", "monitor", role], log_path, env=env, stop_timeout_s=20.0,
                   new_session=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> ChildProcess:
        """Start the program; with a `port`, block until it accepts connections (and passes its probe)."""
        if self.running:
            return self
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                list(self.argv), stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                user=self.user, env={**os.environ, **self.env}, start_new_session=self.new_session,
            )
        if self.port is not None:
            self._wait_ready(self.port)
        return self

    def _wait_ready(self, port: int) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceStartError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if port_open(self.host, port) and (self.ready_probe is None or self._probe()):
                log.info("service ready", service=self.name, port=port, pid=self.proc.pid)
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceStartError(f"{self.name} not ready after {self.startup_timeout_s}s:\n{self.log_tail()}")

    def _probe(self) -> bool:
        try:
            return bool(self.ready_probe())  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - any failure just means "not ready yet"
            return False

    def check_alive(self) -> None:
        """Raise with the log's tail when the process has exited (a dead child fails a wait fast)."""
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")

    def stop(self, timeout_s: float | None = None, sig: int | None = None) -> None:
        """Ask the program to stop; kill it if it does not in time. A server keeps its port for `start`."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(sig or self.stop_signal)
        try:
            self.proc.wait(self.stop_timeout_s if timeout_s is None else timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("process did not stop, killing it", service=self.name)
            self.proc.kill()
            self.proc.wait()
        log.info("process stopped", service=self.name)

    def kill(self) -> None:
        """SIGKILL: a crash (OOM killer, power loss) with no chance to finish a batch or commit offsets."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()
            log.info("process killed", service=self.name)

    def restart(self) -> ChildProcess:
        """Stop, then start in the same environment (a server on the same port, for clients that reconnect)."""
        self.stop()
        return self.start()

    def rss_bytes(self) -> int:
        """Resident memory of the running process (Linux /proc), 0 when it is not running."""
        if not self.running:
            return 0
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except FileNotFoundError:
            return 0
        kib = next((line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")), "0")
        return int(kib) * 1024

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"
