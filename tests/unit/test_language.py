"""Language marking: detected per post, None when there is too little to tell, unsupported ones flagged."""

from datetime import UTC, datetime

import pytest

from schemas import Label, Post
from workers.enrich.language import LanguageDetector, is_supported, letters
from workers.inference.model import sentiment_results


@pytest.fixture(scope="module")
def detector():
    return LanguageDetector()


@pytest.mark.parametrize(("text", "language"), [
    ("This is the worst customer service I have ever had", "en"),
    ("Je déteste ce téléphone, vraiment nul", "fr"),
    ("Das ist wirklich das beste Handy, das ich je hatte", "de"),
    ("Me encanta este producto, es increíble", "es"),
    ("Adoro esse produto, chegou muito rápido", "pt"),
    ("@user https://t.co/abc 😍😍", None),
    ("lol", None),
])
def test_languages_are_detected_or_left_open(detector, text, language):
    assert detector.detect(text) == language


def test_mentions_urls_and_emoji_carry_no_language():
    assert letters("@bob check https://x.y/z #NewPhone 😍 2024") == "check NewPhone"


def test_results_say_whether_the_model_supports_their_language():
    now = datetime.now(UTC)
    posts = [Post(post_id=f"p{i}", created_at=now, text="x") for i in range(3)]
    results = sentiment_results(posts, [[0.1, 0.2, 0.7]] * 3, [Label.NEGATIVE, Label.NEUTRAL, Label.POSITIVE], "v",
                                0.0, languages=["en", "de", None], supported_languages=("en",))
    assert [(r.language, r.language_supported) for r in results] == [("en", True), ("de", False), (None, True)]
    assert is_supported("de", ("en", "de"))


def test_a_producers_language_tag_wins_over_detection():
    from core.settings import Settings
    from workers.agent.triage import Triage
    from workers.inference.model import SentimentModel

    triage = Triage(SentimentModel.load(None, "cpu"), Settings(kafka_bootstrap="localhost:1", worker_ocr=False))
    text = "This is the worst customer service I have ever had"
    now = datetime.now(UTC)
    assert triage.language(Post(post_id="a", created_at=now, text=text, lang="de-AT"), text) == "de"
    assert triage.language(Post(post_id="b", created_at=now, text=text, lang="und"), text) == "en"
    assert triage.language(Post(post_id="c", created_at=now, text=text), text) == "en"
