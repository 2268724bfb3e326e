import io
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image

from schemas import Post
from workers.preprocess import BadInput, decode_image, parse_post

SIZE = 32


def jpeg(width: int = 80, height: int = 60) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty message"),
        (b"{not json", "invalid post"),
        (b'{"post_id": "x"}', "created_at"),
        (b"\xff\xfe\x00bad utf8", "invalid post"),
        (b"x" * 2000, "exceeds limit"),
    ],
)
def test_parse_post_rejects_with_reason(raw, reason):
    with pytest.raises(BadInput, match=reason):
        parse_post(raw, max_bytes=1000)


def test_parse_post_accepts_valid_json():
    post = Post(post_id="ok", created_at=datetime.now(UTC), text="fine")
    assert parse_post(post.model_dump_json().encode(), 10_000) == post


def test_decode_image_shape_and_range():
    pixels = decode_image(jpeg(), SIZE, max_pixels=10_000)
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8


def test_decompression_bomb_guard_checks_header_before_decoding():
    with pytest.raises(BadInput, match="exceeds limit"):
        decode_image(jpeg(200, 200), SIZE, max_pixels=200 * 200 - 1)


@pytest.mark.parametrize("data", [b"", b"not an image at all", jpeg()[:40]])
def test_undecodable_images_are_bad_input(data):
    with pytest.raises(BadInput, match="undecodable image"):
        decode_image(data, SIZE, max_pixels=10**7)
