"""A benchmark's own PostgreSQL schema: on DATABASE_URL (never touching its tables) or an embedded server."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import pool, text
from sqlalchemy.engine import make_url


@contextmanager
def private_schema(database_url: str | None, schema: str, keep: bool = False) -> Iterator[tuple[str, bool]]:
    """(a database URL whose search_path is `schema`, whether the server is embedded); the schema is dropped
    afterwards, and an embedded server (started when `database_url` is None) stopped. With `keep` (DATABASE_URL
    only) an existing schema is reused and left in place, for a benchmark whose data takes long to make."""
    if keep and database_url is None:
        raise ValueError("keeping the benchmark's schema needs DATABASE_URL (an embedded server is thrown away)")
    server = None
    if database_url is None:
        from monitor.devstack.embedded.postgres import database_url as embedded_url
        from monitor.devstack.embedded.postgres import postgres_server

        server = postgres_server(Path(tempfile.mkdtemp(prefix=f"{schema}-")))
        server.start()
        database_url = embedded_url(server.port)
    admin = create_sync_engine(database_url, poolclass=pool.NullPool)
    try:
        with admin.begin() as conn:
            if not keep:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False), server is not None
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        admin.dispose()
        if server is not None:
            server.stop()
