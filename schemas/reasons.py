"""Why a message cannot be used: the error that carries the reason to the dead-letter topic."""

from __future__ import annotations


class BadInput(ValueError):
    """A message that can never be processed; it goes to the dead-letter topic with this reason."""
