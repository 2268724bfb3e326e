"""Brand matching rules compiled to regular expressions: which tracked brands a post talks about.

A brand matches a post when its name, an alias or a keyword appears as a whole word
(case-insensitive; "acme" matches "Acme!", "#acme" and "@acme", never "acmeville"),
or one of its hashtags (#tag) or handles (@handle) appears, in the post's text or keywords.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_WORD = r"\w"  # a word character, Unicode-aware (letters, digits, underscore)


@dataclass(frozen=True)
class BrandRule:
    """One tracked brand's terms, normalised (lower case, no leading # or @)."""

    name: str
    keywords: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()


def normalise_term(term: str, prefix: str = "") -> str:
    """Lower case, single spaces, and without the `#`/`@` sigil a user may or may not type."""
    term = " ".join(term.strip().lower().split())
    return term[len(prefix):] if prefix and term.startswith(prefix) else term


def brand_name(value: str) -> str:
    """A brand as stored and compared everywhere (tracked brands, alert rules); empty is refused."""
    name = normalise_term(value)
    if not name:
        raise ValueError("brand name is empty")
    return name


def _phrase(term: str) -> str:
    """A term as a regex where any run of whitespace matches any other."""
    return r"\s+".join(re.escape(word) for word in term.split())


def compile_rule(rule: BrandRule) -> re.Pattern[str] | None:
    words = {t for t in (rule.name, *rule.aliases, *rule.keywords) if t}
    tagged = [f"#{re.escape(t)}" for t in rule.hashtags if t] + [f"@{re.escape(t)}" for t in rule.handles if t]
    alternatives = sorted((_phrase(w) for w in words), key=len, reverse=True) + tagged
    if not alternatives:
        return None
    return re.compile(rf"(?<!{_WORD})(?:{'|'.join(alternatives)})(?!{_WORD})", re.IGNORECASE)


class BrandMatcher:
    """All tracked brands' rules, compiled once; `match` is what the sink calls per post."""

    def __init__(self, rules: Iterable[BrandRule] = ()) -> None:
        compiled = ((rule.name, compile_rule(rule)) for rule in rules)
        self._patterns: list[tuple[str, re.Pattern[str]]] = [(n, p) for n, p in compiled if p is not None]

    def __len__(self) -> int:
        return len(self._patterns)

    def match(self, text: str, keywords: Sequence[str] = ()) -> set[str]:
        """Names of the brands whose rules match the text or any keyword."""
        haystack = "\n".join([text, *keywords])
        return {name for name, pattern in self._patterns if pattern.search(haystack)}

    def brands_for(self, text: str, keywords: Sequence[str], tagged: Iterable[str]) -> list[str]:
        """Producer tags union rule matches, sorted: the brands a post counts for."""
        return sorted({t.lower() for t in tagged} | self.match(text, keywords))
