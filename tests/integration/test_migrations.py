"""Alembic owns the schema: fresh databases, concurrent sinks upgrading at once, the `monitor migrate` command."""

from __future__ import annotations

import os
import subprocess
import sys

import psycopg
import pytest
from sqlalchemy.engine import make_url

from monitor.store.migrate import current_revision, downgrade, head_revision, upgrade_head
from tests.integration.cli_helpers import monitor

pytestmark = pytest.mark.integration
OBJECTS = {"post_sentiment", "post_thumbnail", "post_deletion", "trend_bucket", "tracked_brand", "trend_summary",
           "daily_brand_sentiment", "daily_share_of_voice", "net_sentiment"}


def relations(database_url: str) -> set[str]:
    plain = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as conn:
        rows = conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        return {name for (name,) in rows}


def test_concurrent_upgrades_from_several_sinks(stack, fresh_database):
    """Four processes upgrade one empty database at once: the advisory lock serialises them."""
    env = {**os.environ, **stack.env(), "DATABASE_URL": fresh_database, "LOG_LEVEL": "WARNING"}
    procs = [subprocess.Popen([sys.executable, "-m", "monitor", "migrate"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * 4, outputs
    assert all(f"schema at revision {head_revision()}" in out for out, _err in outputs)
    assert relations(fresh_database) >= OBJECTS | {"alembic_version"}


def test_downgrade_and_upgrade_again(fresh_database):
    upgrade_head(fresh_database)
    downgrade(fresh_database, "base")
    assert current_revision(fresh_database) is None
    assert relations(fresh_database) & OBJECTS == set()
    upgrade_head(fresh_database)
    assert current_revision(fresh_database) == head_revision()


def test_monitor_migrate_command(stack, fresh_database):
    done = monitor(stack, "migrate", env={"DATABASE_URL": fresh_database})
    assert done.returncode == 0, done.stderr
    assert f"schema at revision {head_revision()}" in done.stdout
    assert relations(fresh_database) >= OBJECTS
