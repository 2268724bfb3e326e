"""Raw Kafka bytes -> validated Post -> decoded pixels, with every rejection given a reason.

Tokenisation and normalisation live in `workers.radm.processor` (they depend on the model's encoders).
"""

from __future__ import annotations

import io

import numpy as np
import simplejpeg
from PIL import Image
from pydantic import ValidationError

from schemas import Post


class BadInput(ValueError):
    """A message that can never be processed; it goes to the dead-letter topic with this reason."""


def parse_post(raw: bytes | None, max_bytes: int) -> Post:
    if raw is None:
        raise BadInput("empty message")
    if len(raw) > max_bytes:
        raise BadInput(f"message of {len(raw)} bytes exceeds limit of {max_bytes}")
    try:
        return Post.model_validate_json(raw)
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:5])
        raise BadInput(f"invalid post: {errors}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a validator bug must not crash a batch
        raise BadInput(f"invalid post: {type(exc).__name__}: {exc}"[:500]) from None


JPEG_SIGNATURE = b"\xff\xd8\xff"


def decode_image(data: bytes, image_size: int, max_pixels: int) -> np.ndarray:
    """Bytes -> uint8 RGB array (image_size, image_size, 3), the layout `RADMProcessor.image_tensor` takes.

    Pixels stay 8-bit until the model's process builds its batch: a quarter of float32's bytes to queue,
    hand to the model process and pickle. The size check reads only the header, so a decompression bomb
    is refused before any pixel is decoded. JPEGs (nearly every photo on social media) go straight to
    libjpeg-turbo through simplejpeg; anything else, and any JPEG it refuses, through PIL.
    """
    if data.startswith(JPEG_SIGNATURE):
        pixels = _decode_jpeg(data, image_size, max_pixels)
        if pixels is not None:
            return pixels
    return _decode_with_pil(data, image_size, max_pixels)


def _decode_jpeg(data: bytes, image_size: int, max_pixels: int) -> np.ndarray | None:
    """A JPEG in one C call, decoded at PIL's DCT scale for the model's size (`draft_scale`), so the pixels
    are PIL's (CMYK within 1 level); None when libjpeg-turbo refuses it (a truncated or corrupt JPEG: strict
    mode, or a colour space it cannot convert), for PIL to decode or to explain.

    CPU per 224 px photo on the 2-core VM: 0.14-0.17 ms against PIL's 0.24-0.43 at 224 px, 0.14 against
    0.21 at 32 px (`bench/exploratory/cpu_decode_ab.py`): PIL parses the markers in Python and copies the
    pixels once more. The whole decode runs without the GIL, so the decode threads scale."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if width * height > max_pixels:
        raise BadInput(f"image of {width}x{height} pixels exceeds limit of {max_pixels}")
    scale = draft_scale(width, height, image_size)
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=-(-height // scale),
                                        min_width=-(-width // scale))
    except ValueError:
        return None
    return _fit(Image.fromarray(pixels), image_size) if pixels.shape[:2] != (image_size, image_size) else pixels


def draft_scale(width: int, height: int, image_size: int) -> int:
    """The DCT scale PIL's `Image.draft` decodes a JPEG at for this size (1/8, 1/4, 1/2 or 1): the largest
    that keeps both sides at least `image_size`. libjpeg-turbo also offers scales between those (7/8, 5/8...);
    keeping PIL's keeps the pixels a checkpoint was trained on."""
    fits = min(width // image_size, height // image_size)
    return next(scale for scale in (8, 4, 2) if fits >= scale) if fits >= 2 else 1


def _decode_with_pil(data: bytes, image_size: int, max_pixels: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise BadInput(f"image of {width}x{height} pixels exceeds limit of {max_pixels}")
            img.draft("RGB", (image_size, image_size))  # JPEG: decode at reduced scale
            # convert copies every pixel: only when the image needs it
            return _fit(img.convert("RGB") if img.mode != "RGB" else img, image_size)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for corrupt data
        raise BadInput(f"undecodable image: {exc}") from None


def _fit(rgb: Image.Image, image_size: int) -> np.ndarray:
    """Resized (bilinear, antialiased when shrinking) to the model's square; a copy only when the size differs."""
    if rgb.size != (image_size, image_size):
        rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)
