"""Start `monitor api` as a child process and wait until it answers: used by `monitor demo` and the tests."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from core.process import ChildProcess


def start_api(env: dict[str, str], log_path: Path, port: int, host: str = "127.0.0.1",
              timeout_s: float = 60.0) -> tuple[ChildProcess, str]:
    """The API process on host:port, ready to serve; returns it with its base URL."""
    child = ChildProcess.monitor("api", {**env, "API_HOST": host, "API_PORT": str(port)}, log_path).start()
    base_url = f"http://{host}:{port}"
    try:
        wait_ready(base_url, child, timeout_s)
    except BaseException:
        child.stop()
        raise
    return child, base_url


def wait_ready(base_url: str, child: ChildProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        child.check_alive()
        try:  # urllib, not httpx: no INFO log line per poll in the demo's output
            with urllib.request.urlopen(f"{base_url}/healthz", timeout=2.0) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"the API at {base_url} did not answer within {timeout_s}s:\n{child.log_tail()}")
        time.sleep(0.2)
