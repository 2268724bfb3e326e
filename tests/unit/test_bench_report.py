"""Benchmark reports record the settings a run took from the environment, never secrets."""

import json
import os

from benchmarks.report import write_report
from core.settings import FLAT_NAMES


def test_a_report_names_the_settings_it_ran_with_but_no_url_or_token(tmp_path, monkeypatch):
    for name in [name for name in os.environ if name.lower() in FLAT_NAMES]:  # the suite sets some
        monkeypatch.delenv(name)
    for name, value in {"CONSUMER_FETCH_MIN_BYTES": "65536", "WORKER_THUMBNAIL_PX": "0", "HOME": "/root",
                        "DATABASE_URL": "postgresql://u:secret@h/db", "API_READ_TOKEN": "secret",
                        "KAFKA_BOOTSTRAP": "h:9092"}.items():
        monkeypatch.setenv(name, value)
    write_report({"benchmark": "x"}, tmp_path / "r.json")
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["benchmark"] == "x"
    assert report["settings_from_environment"] == {"CONSUMER_FETCH_MIN_BYTES": "65536", "WORKER_THUMBNAIL_PX": "0"}
