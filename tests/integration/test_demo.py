"""`monitor demo` as a user runs it: its own embedded stack, ending with trends read from PostgreSQL."""

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from core.process import free_port

pytestmark = pytest.mark.integration


def demo_env(tmp_path) -> dict[str, str]:
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    for name in ("KAFKA_BOOTSTRAP", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    return env


def test_demo_prints_non_empty_trends(tmp_path):
    done = subprocess.run([sys.executable, "-m", "monitor", "demo", "--posts", "60", "--timeout", "120", "--no-serve"],
                          env=demo_env(tmp_path), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SAMPLE posts" in done.stdout
    assert "through the file connector: monitor ingest file" in done.stdout
    rows = [line for line in done.stdout.splitlines() if re.match(r"^(acme|globex|initech)\s+\d{4}-", line)]
    assert rows, done.stdout
    assert sum(int(row.split()[6]) for row in rows) == 60  # the volume column adds up to the posts published
    assert "Redis holds" in done.stdout
    assert "Dashboard:" not in done.stdout


def _lines(proc: subprocess.Popen) -> queue.Queue:
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for_line(lines: queue.Queue, pattern: str, seen: list[str], timeout_s: float) -> re.Match:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        assert line is not None, "demo exited:\n" + "".join(seen)
        seen.append(line)
        if match := re.search(pattern, line):
            return match
    raise AssertionError(f"no line matching {pattern!r}:\n" + "".join(seen))


def interruptible() -> None:
    """Ctrl-C as a terminal delivers it: a runner that started the suite in the background (a shell without job
    control) hands its children SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_serves_the_dashboard_with_live_posts_until_interrupted(tmp_path):
    env = {**demo_env(tmp_path), "API_PORT": str(free_port()), "API_READ_TOKEN": "demo-token"}
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "demo", "--posts", "24", "--timeout", "120",
                             "--rate", "4"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=interruptible)
    seen: list[str] = []
    try:
        lines = _lines(proc)
        url = _wait_for_line(lines, r"Dashboard: (http://\S+)/\?token=demo-token", seen, 240).group(1)
        headers = {"Authorization": "Bearer demo-token"}
        assert httpx.get(url + "/", timeout=10).status_code == 200  # the page; its data needs the token

        def volume() -> int:
            body = httpx.get(f"{url}/api/compare", params={"brands": "acme,globex,initech"}, headers=headers,
                             timeout=10).json()
            return body["total_volume"]

        start = volume()
        assert start >= 24
        deadline = time.monotonic() + 120
        while volume() <= start:  # live sample posts keep arriving: worker -> sink -> trends
            assert time.monotonic() < deadline, "no live posts reached the trends:\n" + "".join(seen)
            time.sleep(1.0)
        rules = httpx.get(f"{url}/api/alert-rules", headers=headers, timeout=10).json()
        assert {r["brand"] for r in rules} == {"acme", "globex", "initech"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:  # a few seconds normally; each child may take its stop timeout (20 s) on a loaded host
            proc.wait(150)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(seen)
