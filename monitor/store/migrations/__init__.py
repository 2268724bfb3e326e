"""Alembic migration environment, shipped inside the package so `monitor migrate` works when installed."""
