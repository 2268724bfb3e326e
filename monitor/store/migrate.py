"""Run the packaged Alembic migrations: `monitor migrate` and the sink's start-up both call `upgrade_head`."""

from __future__ import annotations

import threading
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool

from core.logging import get_logger

log = get_logger(__name__)


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at the migrations inside the installed package (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(files("monitor.store").joinpath("migrations")))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


_ALEMBIC = threading.Lock()
"""Alembic's command API keeps module-level state: one command per process at a time."""


def upgrade_head(database_url: str) -> str:
    """Bring the schema to the newest revision (safe from several processes at once: see env.py's lock)."""
    with _ALEMBIC:
        command.upgrade(alembic_config(database_url), "head")
    revision = current_revision(database_url)
    log.info("database schema at head", revision=revision)
    return revision or ""


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head() or ""


def current_revision(database_url: str) -> str | None:
    engine = create_engine(database_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str) -> None:
    """Up to `revision` only (tests of a revision's data migration start from the one before)."""
    with _ALEMBIC:
        command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    with _ALEMBIC:
        command.downgrade(alembic_config(database_url), revision)
