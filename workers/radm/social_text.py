"""Social-media text -> words a text encoder has seen: emoji, emoticons, elongations, hashtags, mentions, URLs.

A BERT-family WordPiece vocabulary has almost no emoji (they become `[UNK]`, so "new phone 😍" and
"new phone 😡" look the same to the model). Turning each emoji into its CLDR name from the `emoji`
package ("smiling face with heart-eyes") gives the encoder ordinary words whose meaning it already
knows. The same function runs in training and in the worker (through `RADMProcessor`), chosen by the
checkpoint's `RADMConfig.text_normalisation`, so a model always sees text the way it was trained.
"""

from __future__ import annotations

import re
from functools import lru_cache

import emoji

SOCIAL_V1 = "social-1"
NORMALISATIONS = (SOCIAL_V1,)

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w{1,30}")
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_ELONGATION = re.compile(r"(\w)\1{2,}")
_REPEATED_PUNCTUATION = re.compile(r"([!?.])\1{2,}")
_SPACES = re.compile(r"\s+")

# Western emoticons in their common spellings (no library covers them the way `emoji` covers emoji). Matched
# only as whole tokens, so "a:b" or times such as "10:30" are left alone.
_EMOTICONS: dict[str, str] = {
    ":)": "smiling face", ":-)": "smiling face", "(:": "smiling face", ":]": "smiling face", "=)": "smiling face",
    ":d": "grinning face", ":-d": "grinning face", "xd": "grinning squinting face", "=d": "grinning face",
    ";)": "winking face", ";-)": "winking face", ":p": "face with tongue", ":-p": "face with tongue",
    ":(": "frowning face", ":-(": "frowning face", "):": "frowning face", ":[": "frowning face",
    "=(": "frowning face", ":'(": "crying face", ":,(": "crying face", ":/": "confused face",
    ":-/": "confused face", ":|": "neutral face", ":-|": "neutral face", ":o": "face with open mouth",
    ":-o": "face with open mouth", "<3": "red heart", "</3": "broken heart", ">:(": "angry face",
    "-_-": "expressionless face", "^_^": "smiling face", "^^": "smiling face",
}
_EMOTICON = re.compile(
    r"(?<!\S)(" + "|".join(re.escape(e) for e in sorted(_EMOTICONS, key=len, reverse=True)) + r")(?!\S)",
    re.IGNORECASE)


def _emoji_name(character: str, data: dict) -> str:
    name = data.get("en", "").strip(":").replace("_", " ")
    return f" {name} " if name else " "


def hashtag_words(tag: str) -> str:
    """'BestDayEver' -> 'best day ever', 'fail' -> 'fail': the words a hashtag is made of."""
    return _CAMEL.sub(" ", tag).replace("_", " ").lower()


def normalise_social(text: str) -> str:
    """The `social-1` normalisation; idempotent enough that running it twice changes nothing more."""
    text = _URL.sub(" http ", text)
    text = _MENTION.sub(" @user ", text)
    text = _HASHTAG.sub(lambda m: " " + hashtag_words(m.group(1)) + " ", text)
    text = _EMOTICON.sub(lambda m: " " + _EMOTICONS[m.group(1).lower()] + " ", text)
    text = emoji.replace_emoji(text, replace=_emoji_name)
    text = _ELONGATION.sub(r"\1\1", text)
    text = _REPEATED_PUNCTUATION.sub(r"\1\1", text)
    return _SPACES.sub(" ", text).strip()


@lru_cache(maxsize=len(NORMALISATIONS) + 1)
def text_normaliser(name: str | None):
    """The function for a checkpoint's `text_normalisation` (None: the text as it is, as older checkpoints had)."""
    if name is None:
        return None
    if name == SOCIAL_V1:
        return normalise_social
    raise ValueError(f"unknown text normalisation {name!r}: this version knows {NORMALISATIONS}; "
                     "upgrade sentiment-monitor to load this checkpoint")
