"""TweetEval and UMSAB, as published by Cardiff NLP: `<split>_text.txt` + `<split>_labels.txt`, one tweet a line.

The files are not copied into this repository (their licences are the original tasks'); commands take
the folder that holds `tweeteval/` and `umsab/` (the public repositories' `datasets/` and
`data/sentiment/`). TweetEval emotion maps onto polarity: joy and optimism are positive, anger and
sadness negative; it has no neutral class.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from workers.radm.config import SENTIMENT_LABELS
from workers.training.examples import Example

TWEET_DATA_ENV = "MONITOR_TWEET_DATA"
UMSAB_LANGUAGES = ("arabic", "english", "french", "german", "hindi", "italian", "portuguese", "spanish")
EMOTION_POLARITY = {"anger": "negative", "joy": "positive", "optimism": "positive", "sadness": "negative"}

_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def default_tweet_data() -> Path | None:
    """$MONITOR_TWEET_DATA, else a `shared/data` folder beside the checkout (this project's machines)."""
    if os.environ.get(TWEET_DATA_ENV):
        return Path(os.environ[TWEET_DATA_ENV])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "data"
        if (candidate / "tweeteval").is_dir():
            return candidate
    return None


def decode_escapes(line: str) -> str:
    """Some UMSAB lines hold literal `\\u2019`-style escapes; decode those (surrogate pairs included)."""
    if "\\u" not in line:
        return line
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), line)
    return decoded.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _mapping(folder: Path) -> dict[int, str]:
    mapping = {}
    for line in (folder / "mapping.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            index, name = line.split("\t")[:2]
            mapping[int(index)] = name.strip()
    return mapping


def read_labelled_lines(folder: Path, split: str) -> list[tuple[str, str]]:
    """(text, label name) pairs of `<split>_text.txt` and `<split>_labels.txt`, escapes decoded."""
    text_file, label_file = folder / f"{split}_text.txt", folder / f"{split}_labels.txt"
    if not text_file.is_file():
        raise FileNotFoundError(f"{text_file} not found: point --tweet-data at the folder holding tweeteval/ and "
                                f"umsab/ (or set {TWEET_DATA_ENV})")
    texts = text_file.read_text(encoding="utf-8").splitlines()
    labels = label_file.read_text(encoding="utf-8").split()
    if len(texts) != len(labels):
        raise ValueError(f"{folder}: {len(texts)} {split} texts but {len(labels)} labels")
    mapping = _mapping(folder) if (folder / "mapping.txt").is_file() else dict(enumerate(SENTIMENT_LABELS))
    return [(" ".join(decode_escapes(text).split()), mapping[int(label)])
            for text, label in zip(texts, labels, strict=True)]


def _examples(pairs: list[tuple[str, str]], prefix: str) -> list[Example]:
    return [Example(text, None, SENTIMENT_LABELS.index(label), f"{prefix}:{number}")
            for number, (text, label) in enumerate(pairs) if text and label in SENTIMENT_LABELS]


def tweeteval_sentiment(root: Path, split: str) -> list[Example]:
    return _examples(read_labelled_lines(root / "tweeteval" / "sentiment", split), f"tweeteval-sentiment-{split}")


def tweeteval_emotion_polarity(root: Path, split: str) -> list[Example]:
    """Emotion tweets as negative/positive examples (joy, optimism -> positive; anger, sadness -> negative)."""
    pairs = [(text, EMOTION_POLARITY[label]) for text, label in
             read_labelled_lines(root / "tweeteval" / "emotion", split)]
    return _examples(pairs, f"tweeteval-emotion-{split}")


def umsab(root: Path, language: str, split: str) -> list[Example]:
    if language not in UMSAB_LANGUAGES:
        raise ValueError(f"unknown UMSAB language {language!r}: one of {UMSAB_LANGUAGES}")
    return _examples(read_labelled_lines(root / "umsab" / language, split), f"umsab-{language}-{split}")
