"""`monitor demo` as a user runs it: its own embedded stack, ending with trends read from PostgreSQL."""

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_demo_prints_non_empty_trends(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path)}
    for name in ("KAFKA_BOOTSTRAP", "DATABASE_URL", "REDIS_URL"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "monitor", "demo", "--posts", "60", "--timeout", "120"],
                          env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SAMPLE posts" in done.stdout
    rows = [line for line in done.stdout.splitlines() if re.match(r"^(acme|globex|initech)\s+\d{4}-", line)]
    assert rows, done.stdout
    assert sum(int(row.split()[6]) for row in rows) == 60  # the volume column adds up to the posts published
    assert "Redis holds" in done.stdout
