"""Alerts on sentiment swings: rules per brand in PostgreSQL, evaluated periodically, fired alerts stored."""
