"""Alembic environment: a sync connection to DATABASE_URL, upgrades serialised by an advisory lock.

Several sinks may start at once and each runs `upgrade head`; the session-level advisory
lock makes the others wait, and they then find the database already at head.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from monitor.store.db import metadata

MIGRATION_LOCK_KEY = 0x6D6F6E69746F72  # "monitor": one cluster-wide key for schema changes

config = context.config


def run_migrations_offline() -> None:
    """`--sql` mode: print the DDL instead of running it."""
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata,
                      literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:  # a caller handed us a connection (tests)
        _run_locked(connectable)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run_locked(connection)
    finally:
        engine.dispose()


def _run_locked(connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()
    try:
        context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=False)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        connection.rollback()
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
