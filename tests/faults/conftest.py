"""A private embedded stack per fault scenario: tests kill, stop and restart its servers and processes.

The shared integration stack (tests/integration/conftest.py) is never touched, so an outage here
cannot leak into another suite. Each scenario records its figures in the session's `FaultReport`,
written to bench/results/faults.json when FAULTS_REPORT=1.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core.settings import Settings
from core.streaming.topics import ensure_topics
from monitor.devstack.embedded.stack import EmbeddedStack
from monitor.store.db import create_engine
from monitor.store.migrate import upgrade_head
from tests.brokers import test_broker
from tests.faults.helpers import Pipeline
from tests.faults.report import FaultReport

REPORT_PATH = Path(__file__).resolve().parents[2] / "bench" / "results" / "faults.json"

PARTITIONS = 2
CHILD_ENV = {
    "MODEL_CHECKPOINT": "untrained",  # seeded tiny RADM: fast, deterministic; labels do not matter here
    "METRICS_PORT": "0",
    "TOPIC_PARTITIONS": str(PARTITIONS),
    "WORKER_MAX_BATCH": "8",
    "SINK_MAX_BATCH": "32",
    "CONSUMER_SESSION_TIMEOUT_S": "3",
    "CONSUMER_HEARTBEAT_S": "0.5",
    "CONSUMER_REBALANCE_TIMEOUT_S": "3",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture(scope="session")
def fault_report():
    report = FaultReport()
    yield report
    if os.environ.get("FAULTS_REPORT") == "1" and report.scenarios:
        report.write(REPORT_PATH)


@pytest.fixture
def fault_stack(tmp_path):
    with EmbeddedStack.create(tmp_path / "stack", broker=test_broker()) as running:
        yield running


@pytest.fixture
def fault_settings(fault_stack: EmbeddedStack) -> Settings:
    env = {**fault_stack.env(), **CHILD_ENV}
    return Settings(**{name.lower(): value for name, value in env.items() if name != "MODEL_CHECKPOINT"})


@pytest.fixture
async def fault_engine(fault_settings: Settings):
    upgrade_head(fault_settings.store.database_url or "")
    await ensure_topics(fault_settings)
    engine = create_engine(fault_settings.store.database_url or "")
    yield engine
    await engine.dispose()


@pytest.fixture
async def fault_redis(fault_settings: Settings):
    client = Redis.from_url(fault_settings.store.redis_url or "", socket_timeout=2)
    yield client
    await client.aclose()


@pytest.fixture
def pipeline(fault_stack: EmbeddedStack, fault_engine, tmp_path):
    """Worker and sink processes on the scenario's stack (not started: the scenario decides when)."""
    running = Pipeline({**fault_stack.env(), **CHILD_ENV}, tmp_path / "logs")
    yield running
    running.stop()
