"""TweetEval/UMSAB readers on fixture files laid out as the public repositories publish them."""

import pytest

from workers.radm.config import SENTIMENT_LABELS
from workers.training import tweet_corpora


@pytest.fixture
def root(tmp_path):
    sentiment = tmp_path / "tweeteval" / "sentiment"
    emotion = tmp_path / "tweeteval" / "emotion"
    english = tmp_path / "umsab" / "english"
    for folder in (sentiment, emotion, english):
        folder.mkdir(parents=True)
    (sentiment / "mapping.txt").write_text("0\tnegative\n1\tneutral\n2\tpositive\n")
    (sentiment / "val_text.txt").write_text("I hate mondays \n  \nbest day ever\n")
    (sentiment / "val_labels.txt").write_text("0\n1\n2\n")
    (emotion / "mapping.txt").write_text("0\tanger\n1\tjoy\n2\toptimism\n3\tsadness  \n")
    (emotion / "train_text.txt").write_text("so angry\nyay\nit will be fine\nso sad\n")
    (emotion / "train_labels.txt").write_text("0\n1\n2\n3\n")
    (english / "test_text.txt").write_text("okay i\\u2019m sorry\\u002c really\n")
    (english / "test_labels.txt").write_text("1\n")
    return tmp_path


def test_sentiment_lines_keep_their_labels_and_skip_blank_texts(root):
    examples = tweet_corpora.tweeteval_sentiment(root, "val")
    assert [(e.text, SENTIMENT_LABELS[e.label]) for e in examples] == [
        ("I hate mondays", "negative"), ("best day ever", "positive")]


def test_emotions_become_polarity(root):
    examples = tweet_corpora.tweeteval_emotion_polarity(root, "train")
    assert [SENTIMENT_LABELS[e.label] for e in examples] == ["negative", "positive", "positive", "negative"]


def test_umsab_escapes_are_decoded(root):
    (example,) = tweet_corpora.umsab(root, "english", "test")
    assert example.text == "okay i’m sorry, really" and SENTIMENT_LABELS[example.label] == "neutral"


def test_missing_folder_says_where_to_point(tmp_path):
    with pytest.raises(FileNotFoundError, match="--tweet-data"):
        tweet_corpora.tweeteval_sentiment(tmp_path, "val")
    with pytest.raises(ValueError, match="unknown UMSAB language"):
        tweet_corpora.umsab(tmp_path, "klingon", "test")
