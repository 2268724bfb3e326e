"""A login role that can read every table and nothing else, for analysts' ad-hoc SQL (`monitor sql`).

A READ ONLY transaction is not enough on a superuser connection: a superuser can run programs
(`COPY ... TO PROGRAM`), read server files, and switch back from any `SET ROLE`. So `monitor sql`
connects as `monitor_reader` (`pg_read_all_data`, no superuser, no CREATEROLE) and refuses to run on a
superuser connection. The role has no password: on servers with password authentication set one
(`ALTER ROLE monitor_reader PASSWORD '...'`) and put it in ANALYST_DATABASE_URL. Roles are
cluster-wide, so it is created only when missing.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

READER = "monitor_reader"


def upgrade() -> None:
    op.execute(f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{READER}') THEN
                CREATE ROLE {READER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
            END IF;
            GRANT pg_read_all_data TO {READER};
        END
        $$
    """)


def downgrade() -> None:
    op.execute(f"REVOKE pg_read_all_data FROM {READER}")  # the role may serve other databases: it stays
