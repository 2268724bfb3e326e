"""Historical backfill from exports: CSV, JSON Lines or Parquet files of posts, read a batch at a time.

A row's columns are `Post` fields, or are mapped onto them (`columns={"text": "body"}`). The offset is the number
of rows done in this very file (path, size and modification time), so an interrupted import resumes where the
broker's acknowledgements stopped, and a different file under the same connector name starts from its first row.
"""

from __future__ import annotations

import asyncio
import csv
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from connectors.source import Offset, SourceRecord
from core.logging import get_logger
from core.progress import progress_bar
from schemas import Post

log = get_logger(__name__)

FileFormat = Literal["auto", "csv", "jsonl", "parquet"]
LIST_FIELDS = ("brands", "keywords")
OPTIONAL_FIELDS = ("image_url", "lang", "image")
BATCH_ROWS = 1024
"""Rows read between two yields to the event loop (which meanwhile sends to and hears from the broker)."""

csv.field_size_limit(1 << 24)


def detect_format(path: Path) -> Literal["csv", "jsonl", "parquet"]:
    suffixes = [s.lower() for s in path.suffixes]
    if ".parquet" in suffixes or ".pq" in suffixes:
        return "parquet"
    if ".csv" in suffixes or ".tsv" in suffixes:
        return "csv"
    if {".jsonl", ".ndjson", ".json"} & set(suffixes):
        return "jsonl"
    raise ValueError(f"cannot tell the format of {path.name} from its name: pass --format csv|jsonl|parquet")


class FileSource:
    """Rows of one file as posts; ends after the last row."""

    def __init__(self, path: Path, *, file_format: FileFormat = "auto", columns: Mapping[str, str] | None = None,
                 source: str = "file", name: str | None = None, progress: bool = True) -> None:
        self.path = path
        self.format = detect_format(path) if file_format == "auto" else file_format
        self.columns = dict(columns or {})
        self.source = source
        self.name = name or f"file-{path.stem}"
        self.progress = progress
        unknown = set(self.columns) - set(Post.model_fields)
        if unknown:
            raise ValueError(f"--column maps onto Post fields; {sorted(unknown)} are not among "
                             f"{sorted(Post.model_fields)}")

    def identity(self) -> dict[str, Any]:
        stat = self.path.stat()
        return {"path": str(self.path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}

    async def records(self, offset: Offset | None) -> AsyncIterator[SourceRecord]:
        identity = self.identity()
        done = 0
        if offset:
            if all(offset.get(k) == v for k, v in identity.items()):
                done = int(offset.get("row", 0))
                log.info("resuming file import", path=str(self.path), after_row=done)
            else:
                log.warning("cursor is for another file (or this one changed): importing from the first row",
                            path=str(self.path), cursor=dict(offset))
        with progress_bar(total=self._row_count(), initial=done, desc=f"importing {self.path.name}", unit="row",
                          disable=not self.progress) as bar:
            for number, raw in enumerate(self._rows(), start=1):
                if number <= done:
                    continue
                yield self._record(number, raw, {**identity, "row": number})
                bar.update(1)
                if number % BATCH_ROWS == 0:
                    await asyncio.sleep(0)

    def _record(self, number: int, raw: bytes | dict[str, Any], offset: dict[str, Any]) -> SourceRecord:
        try:
            if isinstance(raw, bytes) and not self.columns:
                post = Post.model_validate_json(raw)
                if post.source == "unknown":
                    post = post.model_copy(update={"source": self.source})
            else:
                row = json.loads(raw) if isinstance(raw, bytes) else raw
                post = Post.model_validate(self._as_post_fields(row))
        except ValueError as exc:
            payload = raw if isinstance(raw, bytes) else json.dumps(raw, default=str).encode()
            return SourceRecord(offset=offset, malformed=f"{self.path.name} row {number}: {exc}"[:2000], raw=payload)
        return SourceRecord(value=post, offset=offset, source_time=post.created_at)

    def _as_post_fields(self, row: Any) -> dict[str, Any]:
        if not isinstance(row, dict):
            raise ValueError("a row must be an object of columns")
        fields: dict[str, Any] = {}
        for field in Post.model_fields:
            value = row.get(self.columns.get(field, field))
            if value is None or (value == "" and field in (*OPTIONAL_FIELDS, *LIST_FIELDS)):
                continue
            if field in LIST_FIELDS and isinstance(value, str):
                value = json.loads(value) if value.startswith("[") else [v for v in value.split(",") if v.strip()]
            fields[field] = value
        fields.setdefault("source", self.source)
        if isinstance(fields.get("created_at"), str) and fields["created_at"].replace(".", "", 1).isdigit():
            fields["created_at"] = float(fields["created_at"])
        return fields

    def _rows(self) -> Iterator[bytes | dict[str, Any]]:
        if self.format == "jsonl":
            with self.path.open("rb") as lines:
                for line in lines:
                    if line.strip():
                        yield line
        elif self.format == "csv":
            delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
            with self.path.open(encoding="utf-8-sig", newline="") as text:
                yield from csv.DictReader(text, delimiter=delimiter)
        else:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=BATCH_ROWS):
                yield from batch.to_pylist()

    def _row_count(self) -> int | None:
        """For the progress bar: lines (less a CSV header), or the Parquet footer's count."""
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetFile(self.path).metadata.num_rows
        with self.path.open("rb") as data:
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: data.read(1 << 20), b""))
        return max(0, lines - (1 if self.format == "csv" else 0))
