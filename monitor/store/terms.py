"""Terms of a post (words and two-word phrases, stop words out) and how distinctive a set of them is.

One tokenisation for every keyphrase in the product: the alert's "why" (`monitor/alerts/keyphrases.py`) and the
keyphrase tables (`monitor/store/keyphrases.py`) count the same terms. Terms are counted once per post with
scikit-learn's CountVectorizer analyser and ranked by the log-odds ratio with an informative Dirichlet prior
(Monroe, Colaresi & Quinn, "Fightin' Words", 2008), z-scored: frequent-everywhere words and one-off words both
score low.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from functools import cache

EXTRA_STOP_WORDS = frozenset({"http", "https", "www", "com", "amp", "rt", "via"})
KEPT_CONTENT_WORDS = frozenset({"fire", "bill", "computer", "system", "call", "cry", "empty", "fill", "find", "found",
                                "move", "detail", "interest", "serious", "show", "full", "side", "top", "bottom",
                                "back", "front", "part", "amount", "name", "thick", "thin"})
"""Words in scikit-learn's English stop list (a known quirk of it) that say what a complaint is about."""
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"
"""Words of two letters or more, any script; numbers and underscores are not words here."""
MAX_TERMS_PER_POST = 24
"""A long post adds at most this many terms (its first ones): keyphrases are what many posts say, not one essay."""
PRIOR_PSEUDO_POSTS = 200.0
"""Strength of the prior (the two sets' pooled frequencies): larger shrinks rare terms' scores harder."""


@cache
def stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # heavy import, first use only

    return frozenset((ENGLISH_STOP_WORDS | EXTRA_STOP_WORDS) - KEPT_CONTENT_WORDS)


def vectorizer(**options):
    """A CountVectorizer that counts terms once per post, the way every keyphrase here is counted."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(binary=True, ngram_range=(1, 2), token_pattern=TOKEN_PATTERN, lowercase=True,
                           stop_words=sorted(stop_words()), **options)


@cache
def _analyzer() -> Callable[[str], list[str]]:
    return vectorizer().build_analyzer()


def post_terms(text: str, exclude: Iterable[str] = ()) -> list[str]:
    """A post's distinct terms in order of appearance, without `exclude`'s words or phrases containing them (the
    brand's own name is in every post about it)."""
    banned = {word.lower() for phrase in exclude for word in phrase.split()}
    seen: dict[str, None] = {}
    for term in _analyzer()(text or ""):
        if term not in seen and not banned & set(term.split()):
            seen[term] = None
            if len(seen) == MAX_TERMS_PER_POST:
                break
    return list(seen)


def log_odds_z(window: Mapping[str, float], background: Mapping[str, float]) -> dict[str, float]:
    """Each window term's z-scored log-odds of appearing in the window rather than the background, with the two
    sets' pooled frequencies as the prior (positive: over-represented in the window)."""
    pooled = {term: window.get(term, 0.0) + background.get(term, 0.0) for term in {*window, *background}}
    total = sum(pooled.values())
    if not total:
        return {}
    n_window, n_background = float(sum(window.values())), float(sum(background.values()))
    alpha0 = PRIOR_PSEUDO_POSTS
    scores = {}
    for term, y_i in window.items():
        y_j, a = background.get(term, 0.0), PRIOR_PSEUDO_POSTS * pooled[term] / total
        delta = (math.log((y_i + a) / (n_window + alpha0 - y_i - a))
                 - math.log((y_j + a) / (n_background + alpha0 - y_j - a)))
        scores[term] = delta / math.sqrt(1.0 / (y_i + a) + 1.0 / (y_j + a))
    return scores


def one_word_each(ranked: Iterable[str], top: int) -> list[str]:
    """The first `top` terms of `ranked` that share no word with an earlier one: "battery" or "fire scare" adds
    little next to "battery fire"."""
    chosen: list[str] = []
    for term in ranked:
        if set(term.split()) & {word for other in chosen for word in other.split()}:
            continue
        chosen.append(term)
        if len(chosen) == top:
            break
    return chosen
