"""CSV exports: text that a spreadsheet would run as a formula is shown, not run; everything else is as stored."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from monitor.api.post_search import csv_lines


def test_formula_like_text_is_prefixed_and_other_cells_are_untouched():
    rows = [{"text": text, "polarity": -0.5, "at": datetime(2026, 12, 6, tzinfo=UTC), "flag": True}
            for text in ("=HYPERLINK(\"http://x\")", "+1 great", "-sad", "@brand hi", "\tx", "plain = fine", "")]
    out = csv_lines(rows, header=True, columns=["text", "polarity", "at", "flag"])
    read = list(csv.DictReader(io.StringIO(out)))
    assert [r["text"] for r in read] == ["'=HYPERLINK(\"http://x\")", "'+1 great", "'-sad", "'@brand hi", "'\tx",
                                         "plain = fine", ""]
    assert {(r["polarity"], r["at"], r["flag"]) for r in read} == {("-0.5", "2026-12-06T00:00:00+00:00", "true")}
