"""Keyphrases of an anomaly: the terms that set the anomalous window's posts apart from the baseline's posts.

One job, on purpose: until keyphrases are stored per brand and bucket, the alert loop computes them here on the
fly from a bounded number of stored excerpts; a keyphrase table can replace this module without touching the
rest. Terms (words and two-word phrases, English stop words out) are counted once per post with scikit-learn's
CountVectorizer and ranked by the log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi & Quinn,
"Fightin' Words", 2008), z-scored: frequent-everywhere words and one-off words both score low.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

MAX_WINDOW_POSTS = 500
MAX_BACKGROUND_POSTS = 2000
"""Bounds on the excerpts read per alert: a few thousand short texts vectorise in well under a second."""
PRIOR_PSEUDO_POSTS = 200.0
"""Strength of the prior (the two sets' pooled frequencies): larger shrinks rare terms' scores harder."""
MIN_Z = 1.96
MIN_WINDOW_POSTS = 2
"""A keyphrase is in at least this many of the window's posts: one post repeated is not a theme."""
EXTRA_STOP_WORDS = frozenset({"http", "https", "www", "com", "amp", "rt", "via"})
KEPT_CONTENT_WORDS = frozenset({"fire", "bill", "computer", "system", "call", "cry", "empty", "fill", "find", "found",
                                "move", "detail", "interest", "serious", "show", "full", "side", "top", "bottom",
                                "back", "front", "part", "amount", "name", "thick", "thin"})
"""Words in scikit-learn's English stop list (a known quirk of it) that say what a complaint is about."""
TOKEN_PATTERN = r"(?u)\b[^\W\d_]{2,}\b"
"""Words of two letters or more, any script; numbers and underscores are not words here."""


def distinctive_terms(window: Sequence[str], background: Sequence[str], top: int = 8,
                      exclude: Iterable[str] = ()) -> list[str]:
    """Up to `top` terms over-represented in `window` compared with `background`, most distinctive first.

    `exclude`: words never returned, nor phrases containing them (the brand's own name is in every post).
    """
    window = [text for text in window[:MAX_WINDOW_POSTS] if text]
    background = [text for text in background[:MAX_BACKGROUND_POSTS] if text]
    if len(window) < MIN_WINDOW_POSTS:
        return []
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer  # heavy import, first use only

    vectorizer = CountVectorizer(binary=True, ngram_range=(1, 2), token_pattern=TOKEN_PATTERN, lowercase=True,
                                 stop_words=sorted((ENGLISH_STOP_WORDS | EXTRA_STOP_WORDS) - KEPT_CONTENT_WORDS))
    try:
        counts = vectorizer.fit_transform([*window, *background])
    except ValueError:  # nothing but stop words
        return []
    terms = vectorizer.get_feature_names_out()
    in_window = counts[: len(window)].sum(axis=0).A1
    in_background = counts[len(window):].sum(axis=0).A1
    n_window, n_background = float(in_window.sum()), float(in_background.sum())
    pooled = in_window + in_background
    alpha = PRIOR_PSEUDO_POSTS * pooled / pooled.sum()
    alpha0 = float(alpha.sum())

    banned = {word.lower() for word in exclude for word in word.split()}
    scored: list[tuple[float, str]] = []
    for i, term in enumerate(terms):
        y_i, y_j, a = float(in_window[i]), float(in_background[i]), float(alpha[i])
        if y_i < MIN_WINDOW_POSTS or banned & set(term.split()):
            continue
        delta = (math.log((y_i + a) / (n_window + alpha0 - y_i - a))
                 - math.log((y_j + a) / (n_background + alpha0 - y_j - a)))
        z = delta / math.sqrt(1.0 / (y_i + a) + 1.0 / (y_j + a))
        if z >= MIN_Z:
            scored.append((z, term))
    scored.sort(key=lambda pair: (-round(pair[0], 6), -len(pair[1].split()), pair[1]))  # ties: the phrase
    chosen: list[str] = []
    for _z, term in scored:
        if set(term.split()) & {word for other in chosen for word in other.split()}:
            continue  # "battery" or "fire scare" adds little next to "battery fire": each word shows once
        chosen.append(term)
        if len(chosen) == top:
            break
    return chosen
