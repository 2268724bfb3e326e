"""social-1 normalisation: emoji, emoticons, elongations, hashtags, mentions and URLs reach the model as words."""

import pytest

from workers.radm.config import RADMConfig
from workers.radm.processor import RADMProcessor
from workers.radm.social_text import SOCIAL_V1, hashtag_words, normalise_social, text_normaliser


@pytest.mark.parametrize(("raw", "expected"), [
    ("new phone 😍", "new phone smiling face with heart-eyes"),
    ("new phone 😡", "new phone enraged face"),
    ("soooo gooood!!!!", "soo good!!"),
    ("#BestDayEver and #fail", "best day ever and fail"),
    ("thanks @acme_support see https://t.co/abc www.x.com/y", "thanks @user see http http"),
    ("ugh :( but <3 it :D", "ugh frowning face but red heart it grinning face"),
    ("meeting at 10:30, ratio a:b", "meeting at 10:30, ratio a:b"),
    ("email me@example.com", "email me@example.com"),
    ("", ""),
])
def test_social_text_becomes_words(raw, expected):
    assert normalise_social(raw) == expected


def test_normalising_twice_changes_nothing_more():
    once = normalise_social("LOVE it 😍😍 #NewPhone @bob soooo http://x.y :)")
    assert normalise_social(once) == once


def test_hashtag_words_split_camel_case_and_digits():
    assert hashtag_words("iPhone15Launch") == "i phone 15 launch"
    assert hashtag_words("NBA") == "nba"


def test_emoji_no_longer_tokenise_to_unknown():
    processor = RADMProcessor(RADMConfig.tiny(text_normalisation=SOCIAL_V1))
    plain = RADMProcessor(RADMConfig.tiny())
    unknown = plain.tokenizer.unk_token_id
    texts = ["new phone 😍", "new phone 😡"]
    raw_ids = plain.tokenize(texts)["input_ids"]
    assert (raw_ids == unknown).any(), "the raw tokenizer should not know these emoji (else this test is moot)"
    ids = processor.tokenize(texts)["input_ids"]
    assert not (ids == unknown).any()
    assert not ids[0].equal(ids[1])  # the two posts now differ where the emoji differ


def test_unknown_normalisation_names_what_to_do():
    assert text_normaliser(None) is None
    with pytest.raises(ValueError, match="upgrade sentiment-monitor"):
        text_normaliser("social-99")
