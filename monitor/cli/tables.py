"""Rows to text for the CLI: an aligned table, CSV or JSON, with dates in ISO 8601 (UTC)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

FORMATS = ("table", "csv", "json")


def plain(value: Any) -> Any:
    """A JSON/CSV-safe value: ISO strings for dates, floats for decimals."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    return str(plain(value))


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table") -> str:
    if fmt == "json":
        return json.dumps([{c: plain(v) for c, v in zip(columns, row, strict=True)} for row in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[plain(v) for v in row] for row in rows])
        return out.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [bool(rows) and all(isinstance(r[i], int | float | Decimal) for r in rows if r[i] is not None)
               for i in range(len(columns))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))

    return "\n".join([line(columns), "  ".join("-" * w for w in widths), *(line(r).rstrip() for r in cells)])


def render_records(records: Sequence[dict], fmt: str = "table") -> str:
    columns = list(records[0]) if records else []
    return render(columns, [list(r.values()) for r in records], fmt)
