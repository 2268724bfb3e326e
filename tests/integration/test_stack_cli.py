"""`monitor stack`: the embedded servers alone, their addresses printed as shell lines, stopped by a signal."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
import redis
from aiokafka.admin import AIOKafkaAdminClient

from tests.brokers import test_broker

pytestmark = pytest.mark.integration


def read_exports(proc: subprocess.Popen, timeout_s: float = 120.0) -> dict[str, str]:
    exports: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    assert proc.stdout is not None
    while len(exports) < 3 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            errors = proc.stderr.read() if proc.stderr else ""
            raise AssertionError(f"monitor stack exited with {proc.wait()}: {errors}")
        if line.startswith("export "):
            name, value = line.removeprefix("export ").strip().split("=", 1)
            exports[name] = value
    return exports


async def test_stack_serves_until_a_signal_stops_it(tmp_path):
    broker = test_broker()
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "stack", "--broker", broker],
                            env={**os.environ, "DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        env = read_exports(proc)
        assert set(env) >= {"KAFKA_BOOTSTRAP", "DATABASE_URL", "REDIS_URL"}
        with psycopg.connect(env["DATABASE_URL"].replace("+psycopg", "")) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert redis.Redis.from_url(env["REDIS_URL"]).ping()
        admin = AIOKafkaAdminClient(bootstrap_servers=env["KAFKA_BOOTSTRAP"])
        await admin.start()
        try:
            assert await admin.describe_cluster()
        finally:
            await admin.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        with pytest.raises(psycopg.OperationalError):  # the servers went with it
            psycopg.connect(env["DATABASE_URL"].replace("+psycopg", ""), connect_timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
