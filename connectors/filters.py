"""What a brand wants from a source, decided before producing: a firehose of which a brand needs a sliver should
not cross the broker and the GPU."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas import Post
from schemas.messages import MAX_TAGS


def parse_terms(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"acme, #acme,acme phone"` -> ("acme", "#acme", "acme phone"): comma-separated, trimmed, lower case."""
    if spec is None:
        return ()
    parts = spec.split(",") if isinstance(spec, str) else [p for item in spec for p in item.split(",")]
    return tuple(dict.fromkeys(p.strip().lower() for p in parts if p.strip()))


@dataclass(frozen=True)
class PostFilter:
    """Keep a post when its language is wanted (if `languages` is set) and it mentions a tracked term (if `track`
    is set). A term is a word or phrase matched whole and case-insensitively (`acme` matches "ACME's" but not
    "acmeville"), or a hashtag (`#acme`) matched against the source's hashtags and `#acme` in the text. Posts
    without a language are dropped when languages are wanted: a brand asking for German should not get
    unlabelled posts."""

    track: tuple[str, ...] = ()
    languages: frozenset[str] = field(default_factory=frozenset)
    _words: re.Pattern[str] | None = field(init=False, default=None, repr=False)
    _hashtags: frozenset[str] = field(init=False, default=frozenset(), repr=False)

    def __post_init__(self) -> None:
        words = [t for t in self.track if not t.startswith("#")]
        tags = frozenset(t[1:] for t in self.track if t.startswith("#") and len(t) > 1)
        pattern = None
        if words or tags:
            alternatives = [re.escape(w) for w in sorted(words, key=len, reverse=True)]
            alternatives += [f"#{re.escape(t)}" for t in sorted(tags, key=len, reverse=True)]
            pattern = re.compile(rf"(?<![\w#])(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)
        object.__setattr__(self, "_words", pattern)
        object.__setattr__(self, "_hashtags", tags)

    @property
    def active(self) -> bool:
        return bool(self.track or self.languages)

    def matches(self, post: Post, hashtags: frozenset[str] = frozenset()) -> list[str] | None:
        """The tracked terms the post mentions ([] when nothing is tracked), or None to drop it."""
        if self.languages:
            language = (post.lang or "").split("-")[0].lower()
            if language not in self.languages:
                return None
        if not self.track:
            return []
        found = dict.fromkeys(m.lower() for m in self._words.findall(post.text)) if self._words else {}
        found.update(dict.fromkeys(f"#{t}" for t in self._hashtags & hashtags))
        return list(found) or None

    def apply(self, post: Post, hashtags: frozenset[str] = frozenset(), brands: tuple[str, ...] = ()) -> Post | None:
        """The post to publish, its matched terms added to `keywords` (so analysts see why it was kept) and
        `brands` tagged; None when filtered out."""
        matched = self.matches(post, hashtags)
        if matched is None:
            return None
        if not matched and not brands:
            return post
        keywords = list(dict.fromkeys([*post.keywords, *(m.lstrip("#") for m in matched)]))[:MAX_TAGS]
        tagged = list(dict.fromkeys([*post.brands, *brands]))[:MAX_TAGS]
        return post.model_copy(update={"keywords": keywords, "brands": tagged})
