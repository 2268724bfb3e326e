"""Text inside images (memes, screenshots, captioned product photos), read so the text model can score it.

RapidOCR runs the PP-OCRv4 detection and recognition models that ship inside its wheel (ONNX Runtime,
no download). Detection runs on every image at a reduced size and is cheap; recognition runs only on
the boxes it finds, so a photo without text costs little. The recogniser (trained on Chinese and
English) often drops the spaces between English words; `respace` puts them back with wordninja's
English unigram model.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from core.logging import get_logger

log = get_logger(__name__)

_GLUED = re.compile(r"[A-Za-z]{12,}")


def respace(text: str) -> str:
    """'Thefoodwasabsolutely good' -> 'The food was absolutely good'; common long words stay whole."""
    import wordninja

    def split(match: re.Match[str]) -> str:
        word = match.group(0)
        parts = wordninja.split(word)
        if len(parts) < 2 or "".join(parts) != word:
            return word
        return " ".join(parts)

    return _GLUED.sub(split, text)


@dataclass(frozen=True)
class OcrSettings:
    max_side: int = 480
    """Longest side the detector sees: text a reader can see on a phone stays legible at this size."""
    min_confidence: float = 0.6
    """Recognised lines below this confidence are dropped (noise on textures and faces)."""
    max_chars: int = 500
    cache_entries: int = 4096
    """Texts remembered by image sha256: a meme reposted a thousand times, or a batch redelivered after a
    crash, is read once."""


class ImageTextReader:
    """`read(image)` -> the text found in an RGB uint8 image, '' when there is none. Thread-safe (one lock:
    ONNX Runtime already uses the cores for one image)."""

    def __init__(self, settings: OcrSettings = OcrSettings()) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.settings = settings
        self.engine = RapidOCR(det_limit_side_len=settings.max_side, det_limit_type="max", use_cls=False,
                               print_verbose=False)
        self.lock = threading.Lock()
        self.cache: OrderedDict[bytes, str] = OrderedDict()

    def read(self, image: np.ndarray) -> str:
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
        with self.lock:
            result, _ = self.engine(image[:, :, ::-1])  # RapidOCR takes OpenCV's BGR order
        if not result:
            return ""
        # Reading order: top to bottom, then left to right within a line of boxes.
        lines = sorted(result, key=lambda box: (round(box[0][0][1] / 20), box[0][0][0]))
        text = " ".join(line for _, line, confidence in lines if float(confidence) >= self.settings.min_confidence)
        return respace(" ".join(text.split()))[: self.settings.max_chars]


def with_image_text(text: str, image_text: str) -> str:
    """The text the model scores: the post's own text, then the text read from its image."""
    return f"{text} {image_text}".strip() if image_text else text


def add_image_text(decoded: tuple[str, np.ndarray | None], image: bytes | None, reader: ImageTextReader | None,
                   max_pixels: int) -> tuple[str, np.ndarray | None]:
    """A decoded post (text, pixels) with the text read from its image appended; unchanged without an image
    or a reader. The worker's triage and `monitor eval` both go through here."""
    if reader is None or image is None:
        return decoded
    return with_image_text(decoded[0], read_image_text(reader, image, max_pixels)), decoded[1]


def read_image_text(reader: ImageTextReader, data: bytes, max_pixels: int) -> str:
    """The text in an encoded image, '' when none is found or it cannot be read: OCR never costs a post.
    Identical image bytes are read once (`OcrSettings.cache_entries`)."""
    from workers.media.images import decode_image

    key = hashlib.sha256(data).digest()
    with reader.lock:
        if key in reader.cache:
            reader.cache.move_to_end(key)
            return reader.cache[key]
    try:
        text = reader.read(decode_image(data, reader.settings.max_side, max_pixels))
    except Exception as exc:  # noqa: BLE001 - the post is still scored on its own text and image
        log.warning("image text not read", error=str(exc)[:200])
        return ""
    with reader.lock:
        reader.cache[key] = text
        while len(reader.cache) > reader.settings.cache_entries:
            reader.cache.popitem(last=False)
    return text
