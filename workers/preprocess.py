"""Raw Kafka bytes -> validated Post -> model tensors, with every rejection given a reason."""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from pydantic import ValidationError

from schemas import Post
from workers.radm import RADMConfig

_WORD = re.compile(r"[#@]?\w+|[^\w\s]", re.UNICODE)


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


def tokenize(text: str, config: RADMConfig) -> list[int]:
    """Hash lower-cased words into embedding rows 1..vocab_buckets-1 (0 is padding)."""
    words = _WORD.findall(text.lower())[: config.max_text_tokens]
    return [1 + zlib.crc32(word.encode()) % (config.vocab_buckets - 1) for word in words]


def decode_image(data: bytes, config: RADMConfig, max_pixels: int) -> np.ndarray:
    """Bytes -> float32 CHW array in [0, 1]; refuses oversized or undecodable images before decoding pixels."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise BadInput(f"image of {width}x{height} pixels exceeds limit of {max_pixels}")
            img.draft("RGB", (config.image_size, config.image_size))  # JPEG: decode at reduced scale
            rgb = img.convert("RGB").resize((config.image_size, config.image_size), Image.Resampling.BILINEAR)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for corrupt data
        raise BadInput(f"undecodable image: {exc}") from None
    return np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0


def collate(
    token_lists: Sequence[list[int]], images: Sequence[np.ndarray | None], config: RADMConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a batch to its longest text; posts without an image get a zero image and has_image=False."""
    length = max(1, max((len(t) for t in token_lists), default=1))
    token_ids = torch.zeros(len(token_lists), length, dtype=torch.long)
    for row, tokens in enumerate(token_lists):
        token_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
    pixels = torch.zeros(len(images), 3, config.image_size, config.image_size)
    has_image = torch.zeros(len(images), dtype=torch.bool)
    for row, image in enumerate(images):
        if image is not None:
            pixels[row] = torch.from_numpy(image)
            has_image[row] = True
    return token_ids, pixels, has_image
