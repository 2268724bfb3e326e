"""Alembic revisions (a package so non-editable installs ship them)."""
