"""The one interface every connector implements: an async stream of records, each with the offset to resume after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from schemas import Post, PostDeletion

Offset = Mapping[str, Any]
"""A source's resume position (Jetstream `time_us`, a Mastodon status id, feed validators, a file row): JSON-ready."""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One event read from a source.

    `value` is what to publish: a `Post`, a `PostDeletion`, or None for an event with nothing to publish (another
    collection, an unchanged feed). `offset`, when set, is where a restarted connector resumes once this record and
    every one before it is acknowledged. `malformed` names why an event could not be read; its `raw` bytes go to the
    dead-letter topic.
    """

    value: Post | PostDeletion | None = None
    offset: Offset | None = None
    source_time: datetime | None = None
    malformed: str | None = None
    raw: bytes = b""
    hashtags: frozenset[str] = field(default_factory=frozenset)
    """Tags the source marks as hashtags (Bluesky facets, Mastodon tags), lower case without '#'."""


class SourceRefused(RuntimeError):
    """The source refused the connector for a reason that retrying cannot fix (missing or wrong credentials): the
    connector stops and says why, instead of reconnecting forever."""


@runtime_checkable
class Source(Protocol):
    """A connector's protocol side. `name` keys its cursor file and its metrics; `records` starts from `offset`
    (None: the source's own start, e.g. live for a stream, the first row for a file) and ends only for finite
    sources (files). Reconnects and rate limits are the source's business; the runner handles Kafka."""

    name: str

    def records(self, offset: Offset | None) -> AsyncIterator[SourceRecord]: ...
