"""The Faust app factory: one place so the worker, the sink and the tests agree on consumer settings."""

from __future__ import annotations

import asyncio

import faust
import mode

from core.settings import Settings
from core.streaming import faust_overrides
from core.streaming.connection import faust_credentials, require_bootstrap
from core.streaming.topics import ensure_topics


def create_app(app_id: str, settings: Settings) -> faust.App:
    """A Faust app whose id is its consumer group; offsets are committed only for acked events. Its consumer
    hands each message over without Faust's per-message tasks and waits `CONSUMER_FETCH_WAIT_S` per fetch for
    `CONSUMER_FETCH_MIN_BYTES` (`core.streaming.faust_overrides`)."""
    brokers = ";".join(f"kafka://{host}" for host in require_bootstrap(settings).split(","))
    datadir = settings.runtime.data_dir / "faust" / app_id  # Faust's default is a `<app id>-data` folder in the cwd
    datadir.mkdir(parents=True, exist_ok=True)  # Faust creates only the last level
    return faust_overrides.App(
        app_id,
        fetch_wait_s=settings.kafka.fetch_wait_s,
        fetch_min_bytes=settings.kafka.fetch_min_bytes,
        idempotent_producer=settings.kafka.idempotent_producer,
        broker=brokers,
        store="memory://",
        datadir=str(datadir),
        topic_partitions=settings.kafka.topic_partitions,
        topic_replication_factor=settings.kafka.topic_replication,
        broker_credentials=faust_credentials(settings),
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.kafka.session_timeout_s,
        broker_heartbeat_interval=settings.kafka.heartbeat_s,
        broker_rebalance_timeout=settings.kafka.rebalance_timeout_s,
        broker_commit_interval=1.0,
        web_enabled=False,
        producer_acks=-1,
        # An agent that raises (a bug, a broker refusing results) exits the process instead of leaving it
        # alive with a dead agent: the process manager restarts it and the uncommitted events are redelivered.
        agent_supervisor=mode.CrashingSupervisor,
    )


def run_app(app: faust.App, settings: Settings) -> None:
    """Run a Faust worker in this process until SIGTERM/SIGINT (graceful: in-flight batch finishes)."""
    asyncio.run(ensure_topics(settings))
    worker = faust.Worker(app, loglevel=settings.runtime.log_level, override_logging=False)
    worker.execute_from_commandline()
