"""CLI output: table, CSV and JSON carry the same rows, dates as ISO 8601."""

import csv
import io
import json
from datetime import UTC, date, datetime

from monitor.cli.tables import render

COLUMNS = ["brand", "day", "volume", "net_sentiment", "bucket_start"]
ROWS = [("acme", date(2026, 1, 2), 10, 0.25, datetime(2026, 1, 2, tzinfo=UTC)), ("globex", date(2026, 1, 2), 3, None,
                                                                                  datetime(2026, 1, 2, tzinfo=UTC))]


def test_json_and_csv_round_trip():
    assert json.loads(render(COLUMNS, ROWS, "json"))[0] == {
        "brand": "acme", "day": "2026-01-02", "volume": 10, "net_sentiment": 0.25,
        "bucket_start": "2026-01-02T00:00:00+00:00"}
    parsed = list(csv.reader(io.StringIO(render(COLUMNS, ROWS, "csv"))))
    assert parsed[0] == COLUMNS
    assert parsed[2] == ["globex", "2026-01-02", "3", "", "2026-01-02T00:00:00+00:00"]


def test_table_is_aligned():
    lines = render(COLUMNS, ROWS).splitlines()
    assert lines[0].split() == COLUMNS
    assert len(lines) == 4
    assert "0.2500" in lines[2]
