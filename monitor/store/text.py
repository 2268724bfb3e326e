"""Text PostgreSQL can store: psycopg refuses a NUL character and cannot encode a lone UTF-16 surrogate, so such a
value must be refused where it enters (a 422 at the API), not fail as a database error later."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, StringConstraints

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: str) -> str:
    """`value` unchanged; ValueError when PostgreSQL could not store it."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    if _SURROGATE.search(value):
        raise ValueError("must not contain a lone UTF-16 surrogate (\\ud800-\\udfff)")
    return value


StoredText = Annotated[str, AfterValidator(storable)]
"""A `str` field or parameter that ends up in PostgreSQL (a brand, a term, a filter, a post id)."""


def stored_text(*, min_length: int | None = None, max_length: int | None = None) -> Any:
    """`StoredText` with length limits. They must sit on the string itself, before the check: put on the
    annotated type from outside, pydantic reports them as a list's ("at most 64 items")."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length), AfterValidator(storable)]
