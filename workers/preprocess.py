"""Raw Kafka bytes -> validated Post -> decoded pixels, with every rejection given a reason.

Tokenisation and normalisation live in `workers.radm.processor` (they depend on the model's encoders).
"""

from __future__ import annotations

import io

import numpy as np
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


def decode_image(data: bytes, image_size: int, max_pixels: int) -> np.ndarray:
    """Bytes -> uint8 RGB array (image_size, image_size, 3), the layout `RADMProcessor.image_tensor` takes.

    Pixels stay 8-bit until the model's process builds its batch: a quarter of float32's bytes to queue,
    hand to the model process and pickle. The size check reads only the header, so a decompression bomb
    is refused before any pixel is decoded.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise BadInput(f"image of {width}x{height} pixels exceeds limit of {max_pixels}")
            img.draft("RGB", (image_size, image_size))  # JPEG: decode at reduced scale
            # convert and resize each copy every pixel: only when the image needs them (a 224 px RGB JPEG for a
            # 224 px model needs neither)
            rgb = img.convert("RGB") if img.mode != "RGB" else img
            if rgb.size != (image_size, image_size):
                rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
            pixels = np.asarray(rgb, dtype=np.uint8)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for corrupt data
        raise BadInput(f"undecodable image: {exc}") from None
    return pixels
