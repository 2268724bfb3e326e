"""The language of a post, so a result in a language the model was never evaluated on is marked, not trusted.

lingua's models ship in its wheel. The detector knows the languages most seen on social networks, in
its low-accuracy mode (trigrams only: tens of MB instead of about half a GB per process). Mentions,
URLs, hashtag signs and emoji are removed first (they say nothing about the language and would make
"@user http" look like Portuguese); a text with too few letters left gets no language (None) rather
than a guess.
"""

from __future__ import annotations

import re
from functools import cached_property

import emoji

DETECTED_LANGUAGES = ("ENGLISH", "SPANISH", "PORTUGUESE", "FRENCH", "GERMAN", "ITALIAN", "DUTCH", "SWEDISH",
                      "POLISH", "RUSSIAN", "UKRAINIAN", "TURKISH", "ARABIC", "PERSIAN", "HINDI", "INDONESIAN",
                      "TAGALOG", "THAI", "VIETNAMESE", "JAPANESE", "KOREAN", "CHINESE")
"""lingua `Language` names the detector chooses between."""
MIN_LETTERS = 10
"""Fewer letters than this (after removing mentions, URLs and emoji): no language is claimed."""

_NOISE = re.compile(r"(?:https?://|www\.)\S+|(?<![\w@])@\w+|[#_]|\d+", re.IGNORECASE)


def letters(text: str) -> str:
    """The part of a post that carries its language."""
    return " ".join(emoji.replace_emoji(_NOISE.sub(" ", text), replace=" ").split())


class LanguageDetector:
    """`detect(text)` -> an ISO 639-1 code ('en', 'de', ...) or None. Safe to share between threads."""

    def __init__(self, languages: tuple[str, ...] = DETECTED_LANGUAGES, min_letters: int = MIN_LETTERS) -> None:
        self.languages = languages
        self.min_letters = min_letters

    @cached_property
    def _detector(self):
        from lingua import Language, LanguageDetectorBuilder

        chosen = [getattr(Language, name) for name in self.languages]
        return (LanguageDetectorBuilder.from_languages(*chosen).with_minimum_relative_distance(0.1)
                .with_low_accuracy_mode().with_preloaded_language_models().build())

    def detect(self, text: str) -> str | None:
        content = letters(text)
        if sum(character.isalpha() for character in content) < self.min_letters:
            return None
        language = self._detector.detect_language_of(content)
        return language.iso_code_639_1.name.lower() if language is not None else None


def is_supported(language: str | None, supported: tuple[str, ...]) -> bool:
    """A post with no detectable language (emoji only, a few letters) is scored as usual; one in a language
    outside the model's evaluated set is not trusted."""
    return language is None or language in supported
