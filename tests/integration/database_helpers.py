"""A database of a test's own on the suite's PostgreSQL server, for tests whose writes must not reach the shared one."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy.engine import make_url


@contextlib.contextmanager
def private_database(database_url: str, prefix: str = "fresh") -> Iterator[str]:
    """An empty database next to `database_url`'s, yielded as its URL and dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    url = make_url(database_url)
    admin = f"postgresql://{url.username}@{url.host}:{url.port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
