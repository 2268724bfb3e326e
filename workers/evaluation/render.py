"""Captioned photos for the image evaluation set: a sentence drawn in a readable box onto a sample photo."""

from __future__ import annotations

import io
import random
import textwrap
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "cat", "hubble_deep_field", "moon", "retina")
CANVAS = 480


@lru_cache(maxsize=len(PHOTOS))
def _photo(name: str) -> Image.Image:
    from skimage import data as samples

    pixels = getattr(samples, name)()
    return Image.fromarray(pixels.astype(np.uint8)).convert("RGB").resize((CANVAS, CANVAS))


@lru_cache(maxsize=4)
def _font(size: int) -> ImageFont.FreeTypeFont:
    """DejaVu Sans as matplotlib ships it (no system fonts needed)."""
    from matplotlib import font_manager

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def render_text_photo(text: str, number: int, seed: int = 7) -> bytes:
    """JPEG bytes: photo `number` of a fixed-seed draw with `text` wrapped in a white box, top or bottom."""
    rng = random.Random(seed * 100_003 + number)
    image = _photo(rng.choice(PHOTOS)).copy()
    draw = ImageDraw.Draw(image)
    font = _font(rng.choice((26, 30, 34)))
    lines = textwrap.wrap(text, width=int((CANVAS - 48) / (0.6 * font.size)))
    line_height = font.size + 8
    box_height = line_height * len(lines) + 16
    top = 12 if rng.random() < 0.5 else CANVAS - box_height - 12
    draw.rectangle((12, top, CANVAS - 12, top + box_height), fill=(255, 255, 255))
    for row, line in enumerate(lines):
        draw.text((24, top + 8 + row * line_height), line, fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()
