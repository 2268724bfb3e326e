"""Text inside images: the bundled PP-OCRv4 models read a captioned photo; a plain photo yields nothing."""

import io

import numpy as np
import pytest
from PIL import Image

from workers.enrich.ocr import ImageTextReader, read_image_text, respace, with_image_text
from workers.evaluation.render import render_text_photo


@pytest.fixture(scope="module")
def reader():
    return ImageTextReader()


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_caption_is_read(reader):
    text = reader.read(pixels(render_text_photo("The service was terrible and slow", 1)))
    assert "terrible" in text.lower() and "service" in text.lower()


def test_photo_without_text_gives_nothing(reader):
    from skimage import data

    assert reader.read(np.asarray(Image.fromarray(data.chelsea()).convert("RGB"))) == ""


def test_unreadable_bytes_cost_no_post(reader):
    assert read_image_text(reader, b"not an image", max_pixels=10_000_000) == ""


def test_glued_words_are_respaced():
    assert respace("Thefoodwasabsolutely great") == "The food was absolutely great"
    assert respace("unbelievable") == "unbelievable"


def test_image_text_follows_the_post_text():
    assert with_image_text("look", "worst day ever") == "look worst day ever"
    assert with_image_text("look", "") == "look"
    assert with_image_text("", "so happy") == "so happy"


def test_the_same_image_is_read_once(reader, monkeypatch):
    meme = render_text_photo("Never buying this again", 4)
    calls = []
    original = reader.read
    monkeypatch.setattr(reader, "read", lambda image: calls.append(1) or original(image))
    first = read_image_text(reader, meme, max_pixels=10_000_000)
    assert read_image_text(reader, meme, max_pixels=10_000_000) == first and "never" in first.lower()
    assert len(calls) == 1
