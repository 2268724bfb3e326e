"""Word-list baselines scored on the same items as the model: VADER, AFINN and TextBlob (their own packages).

Each maps its score to three classes the way its authors suggest: VADER's compound >= 0.05 positive,
<= -0.05 negative; AFINN and TextBlob (pattern analyzer, no downloads) positive above 0, negative below.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

from workers.evaluation.sets import NEGATIVE, NEUTRAL, POSITIVE


def three_way(score: float, threshold: float = 0.0) -> int:
    if score > threshold:
        return POSITIVE
    if score < -threshold:
        return NEGATIVE
    return NEUTRAL


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=1)
def _afinn():
    from afinn import Afinn

    return Afinn(emoticons=True)


def vader(text: str) -> int:
    compound = _vader().polarity_scores(text)["compound"]
    return POSITIVE if compound >= 0.05 else NEGATIVE if compound <= -0.05 else NEUTRAL


def afinn(text: str) -> int:
    return three_way(_afinn().score(text))


def textblob(text: str) -> int:
    from textblob import TextBlob

    return three_way(TextBlob(text).sentiment.polarity)


LEXICONS: dict[str, Callable[[str], int]] = {"VADER": vader, "AFINN": afinn, "TextBlob": textblob}


def predict(name: str, texts: Sequence[str]) -> list[int]:
    scorer = LEXICONS[name]
    return [scorer(text) for text in texts]
