"""Analysts' reads of stored posts over HTTP: bounded windows, opaque page cursors, and exports as CSV or Parquet
(the queries are `monitor/store/posts.py`'s).

Every read is bounded: a window of at most `MAX_WINDOW_DAYS`, a page of at most 200 posts, an export of at most
`EXPORT_MAX_ROWS`. A cursor carries the (created_at, post_id) of a page's last post, where the next page starts.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.ext.asyncio import AsyncEngine

from monitor.api.queries import thumbnail_url
from monitor.store.posts import PostFilter, post_rows, stream_posts

MAX_WINDOW_DAYS = 400
"""The longest window a post read may span (longer than posts are kept, `RETENTION_POSTS_DAYS`, by default)."""
EXPORT_MAX_ROWS = 100_000
"""An export holds at most this many posts, newest first: narrow the window or the filters for the rest."""
MAX_QUERY_CHARS = 200
"""Longest `q`: a search is a few words; longer input is refused rather than parsed."""
MAX_CURSOR_CHARS = 400
STREAM_BATCH = 2_000
"""Rows fetched per round trip while an export streams."""

EXPORT_COLUMNS = ("post_id", "created_at", "processed_at", "label", "confidence", "p_negative", "p_neutral",
                  "p_positive", "polarity", "model_version", "language", "language_supported", "source",
                  "text_excerpt", "image_ref")
"""The columns of an export, in order (CSV header and Parquet schema)."""

PARQUET_SCHEMA = pa.schema([
    ("post_id", pa.string()), ("created_at", pa.timestamp("us", tz="UTC")),
    ("processed_at", pa.timestamp("us", tz="UTC")), ("label", pa.string()), ("confidence", pa.float64()),
    ("p_negative", pa.float64()), ("p_neutral", pa.float64()), ("p_positive", pa.float64()),
    ("polarity", pa.float64()), ("model_version", pa.string()), ("language", pa.string()),
    ("language_supported", pa.bool_()), ("source", pa.string()), ("text_excerpt", pa.string()),
    ("image_ref", pa.string())])


class BadCursor(ValueError):
    """A `cursor` this API did not make (or one from before a change of its format)."""


def bounded_window(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime | None]:
    """`since` defaults to `MAX_WINDOW_DAYS` before `until` (or now); ValueError for a longer window."""
    span = timedelta(days=MAX_WINDOW_DAYS)
    if since is None:
        return (until or now) - span, until
    if (until or now) - since > span:
        raise ValueError(f"the window spans more than {MAX_WINDOW_DAYS} days; narrow `since`/`until`")
    return since, until


def encode_cursor(created_at: datetime, post_id: str) -> str:
    """Opaque to clients: where the next page starts (the last post of this one)."""
    raw = json.dumps([created_at.isoformat(), post_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        at, post_id = json.loads(raw)
        when = datetime.fromisoformat(at)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadCursor("not a cursor this API made; start again without `cursor`") from exc
    if when.tzinfo is None or not isinstance(post_id, str) or "\x00" in post_id:
        raise BadCursor("not a cursor this API made; start again without `cursor`")
    return when, post_id


def _shaped(row: dict) -> dict:
    return {**row, "confidence": max(row["p_negative"], row["p_neutral"], row["p_positive"])}


async def post_page(engine: AsyncEngine, where: PostFilter, limit: int,
                    cursor: str | None = None) -> tuple[list[dict], str | None]:
    """One page and the cursor of the next (None on the last page). One row more than asked says whether a next
    page exists without counting."""
    rows = await post_rows(engine, where, limit + 1, decode_cursor(cursor) if cursor else None)
    more = len(rows) > limit
    rows = rows[:limit]
    posts = [{**_shaped(r), "thumbnail_url": thumbnail_url(r["post_id"]) if r.pop("has_thumbnail") else None}
             for r in rows]
    return posts, encode_cursor(rows[-1]["created_at"], rows[-1]["post_id"]) if more else None


async def export_rows(engine: AsyncEngine, where: PostFilter, limit: int) -> AsyncIterator[list[dict]]:
    """Batches of export rows, streamed: memory stays flat whatever the row cap."""
    async for batch in stream_posts(engine, where, limit, STREAM_BATCH):
        yield [_shaped(row) for row in batch]


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A text cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (CSV injection)."""


def csv_lines(rows: Iterable[dict], header: bool, columns: Iterable[str] = EXPORT_COLUMNS) -> str:
    """RFC 4180 CSV text of `rows`; times in ISO 8601 with their offset, empty cells for nulls, and text that a
    spreadsheet would run as a formula (a post's text is anyone's) prefixed with an apostrophe, OWASP's advice."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    columns = list(columns)
    if header:
        writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


async def csv_stream(batches: AsyncIterator[list[dict]]) -> AsyncIterator[bytes]:
    """The header first, so even an empty export is a valid CSV file with its columns."""
    yield csv_lines([], header=True).encode()
    async for batch in batches:
        yield csv_lines(batch, header=False).encode()


async def parquet_bytes(batches: AsyncIterator[list[dict]], schema: pa.Schema = PARQUET_SCHEMA) -> bytes:
    """A Parquet file (zstd) of every batch; built in memory, which the row cap bounds (~100 MB at worst)."""
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        async for batch in batches:
            writer.write_table(pa.Table.from_pylist([{c: r[c] for c in schema.names} for r in batch], schema=schema))
    return sink.getvalue()


