"""`monitor bench ocr` on a handful of images: every image distinct (the OCR cache must not hide the cost)."""

import json

from benchmarks.ocr import distinct_photos, run_ocr_benchmark


def test_photos_are_distinct():
    photos = distinct_photos(6)
    assert len(set(photos)) == 6


def test_report_has_costs_and_ratios(tmp_path):
    report = run_ocr_benchmark(3, "tiny", tmp_path / "ocr.json")
    saved = json.loads((tmp_path / "ocr.json").read_text())
    assert saved["ms_per_image_with_text"] > 0 and saved["ms_per_image_without_text"] > 0
    assert saved["model_ms_per_post"] > 0
    assert report["ocr_with_text_vs_model"] == round(saved["ms_per_image_with_text"] / saved["model_ms_per_post"], 2)
