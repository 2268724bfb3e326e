"""Keyphrases of an anomaly: the terms that set the anomalous window's posts apart from the baseline's posts.

Computed on the fly from a bounded number of stored excerpts, with the terms and the log-odds ranking every
keyphrase in the product uses (`monitor/store/terms.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from monitor.store.terms import log_odds_z, one_word_each, vectorizer

MAX_WINDOW_POSTS = 500
MAX_BACKGROUND_POSTS = 2000
"""Bounds on the excerpts read per alert: a few thousand short texts vectorise in well under a second."""
MIN_Z = 1.96
MIN_WINDOW_POSTS = 2
"""A keyphrase is in at least this many of the window's posts: one post repeated is not a theme."""


def distinctive_terms(window: Sequence[str], background: Sequence[str], top: int = 8,
                      exclude: Iterable[str] = ()) -> list[str]:
    """Up to `top` terms over-represented in `window` compared with `background`, most distinctive first.

    `exclude`: words never returned, nor phrases containing them (the brand's own name is in every post).
    """
    window = [text for text in window[:MAX_WINDOW_POSTS] if text]
    background = [text for text in background[:MAX_BACKGROUND_POSTS] if text]
    if len(window) < MIN_WINDOW_POSTS:
        return []
    counter = vectorizer()
    try:
        counts = counter.fit_transform([*window, *background])
    except ValueError:  # nothing but stop words
        return []
    terms = counter.get_feature_names_out()
    in_window = counts[: len(window)].sum(axis=0).A1
    in_background = counts[len(window):].sum(axis=0).A1
    scores = log_odds_z({t: float(n) for t, n in zip(terms, in_window, strict=True) if n},
                        {t: float(n) for t, n in zip(terms, in_background, strict=True) if n})
    banned = {word.lower() for word in exclude for word in word.split()}
    window_posts = dict(zip(terms, in_window, strict=True))
    scored = [(z, term) for term, z in scores.items()
              if z >= MIN_Z and window_posts[term] >= MIN_WINDOW_POSTS and not banned & set(term.split())]
    scored.sort(key=lambda pair: (-round(pair[0], 6), -len(pair[1].split()), pair[1]))  # ties: the phrase
    return one_word_each((term for _z, term in scored), top)
