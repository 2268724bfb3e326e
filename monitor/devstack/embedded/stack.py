"""The embedded stack: broker, PostgreSQL and Redis started privately for the demo and tests."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.logging import get_logger
from core.process import ChildProcess
from monitor.devstack.embedded.kafka import kafka_server
from monitor.devstack.embedded.postgres import database_url, postgres_server
from monitor.devstack.embedded.redis import redis_server

log = get_logger(__name__)


@dataclass
class EmbeddedStack:
    """Owns the three servers; use as a context manager so they always stop."""

    kafka: ChildProcess
    postgres: ChildProcess
    redis: ChildProcess

    @classmethod
    def create(cls, data_dir: Path, fresh: bool = True) -> EmbeddedStack:
        """Prepare (not start) servers under `data_dir`; `fresh` wipes earlier data."""
        if fresh and data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(kafka=kafka_server(data_dir), postgres=postgres_server(data_dir), redis=redis_server(data_dir))

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

    def env(self) -> dict[str, str]:
        """Environment variables that point every monitor process at this stack."""
        return {
            "KAFKA_BOOTSTRAP": f"127.0.0.1:{self.kafka.port}",
            "DATABASE_URL": database_url(self.postgres.port),
            "REDIS_URL": f"redis://127.0.0.1:{self.redis.port}/0",
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
