"""The embedded stack: broker, PostgreSQL and Redis started privately for the demo and tests."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.logging import get_logger
from core.process import ChildProcess
from monitor.devstack.embedded.apache_kafka import KAFKA_VERSIONS, kraft_cluster
from monitor.devstack.embedded.kafka import kafka_server
from monitor.devstack.embedded.postgres import database_url, postgres_server
from monitor.devstack.embedded.redis import redis_server

log = get_logger(__name__)

TANSU_CONSUMER_ENV = {"CONSUMER_SESSION_TIMEOUT_S": "4", "CONSUMER_REBALANCE_TIMEOUT_S": "4",
                      "KAFKA_IDEMPOTENT_PRODUCER": "false"}
"""Tansu holds every group join for half the session timeout: short ones keep the demo and tests quick. It does
not answer InitProducerId, so producers there cannot be idempotent."""


def broker_server(broker: str, data_dir: Path) -> ChildProcess:
    """The embedded Tansu broker, or one Apache Kafka KRaft node of the line `broker` names (`kafka-4.1`)."""
    if broker == "tansu":
        return kafka_server(data_dir)
    line = broker.removeprefix("kafka-")
    if line not in KAFKA_VERSIONS:
        known = ", ".join(f"kafka-{v}" for v in KAFKA_VERSIONS)
        raise ValueError(f"unknown broker {broker!r}: tansu or one of {known}")
    [node] = kraft_cluster(KAFKA_VERSIONS[line], data_dir, nodes=1)
    return node


@dataclass
class EmbeddedStack:
    """Owns the three servers; use as a context manager so they always stop."""

    kafka: ChildProcess
    postgres: ChildProcess
    redis: ChildProcess
    broker: str = "tansu"

    @classmethod
    def create(cls, data_dir: Path, fresh: bool = True, broker: str = "tansu") -> EmbeddedStack:
        """Prepare (not start) servers under `data_dir`; `fresh` wipes earlier data. `broker` is an
        EMBEDDED_BROKER value: `tansu`, or `kafka-<line>` for Apache Kafka (`KAFKA_VERSIONS`)."""
        if fresh and data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(kafka=broker_server(broker, data_dir), postgres=postgres_server(data_dir),
                   redis=redis_server(data_dir), broker=broker)

    @property
    def servers(self) -> tuple[ChildProcess, ...]:
        return (self.kafka, self.postgres, self.redis)

    def start(self) -> None:
        with ThreadPoolExecutor(max_workers=3) as pool:
            for future in [pool.submit(server.start) for server in self.servers]:
                future.result()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def wait(self, poll_s: float = 1.0) -> None:
        """Block until a server exits (raising with its log's tail) or the caller is interrupted."""
        while True:
            for server in self.servers:
                server.check_alive()
            time.sleep(poll_s)

    def env(self) -> dict[str, str]:
        """Environment variables that point every monitor process at this stack (and, on Tansu, the shorter
        consumer-group timeouts that keep its group joins quick)."""
        tuning = TANSU_CONSUMER_ENV if self.broker == "tansu" else {}
        return {
            "KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka.port}",
            "DATABASE_URL": database_url(self.postgres.port),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/0",
            **tuning,
        }

    def __enter__(self) -> EmbeddedStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
