"""Property-based fuzzing of image decoding: corrupt, truncated, zero-byte, non-image and bomb payloads end
in BadInput with a reason, never another exception; a usable image always comes out the model's size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from schemas.reasons import BadInput
from tests.faults.bad_inputs import jpeg, png_bomb, post_json
from workers.agent.posts import parse_post
from workers.media.images import decode_image

SIZE = 32
MAX_PIXELS = 1_000_000
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def png(size: int = 48) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, 200, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def decodes_or_bad_input(data: bytes) -> np.ndarray | None:
    try:
        pixels = decode_image(data, SIZE, MAX_PIXELS)
    except BadInput as exc:
        assert str(exc)
        return None
    assert pixels.shape == (SIZE, SIZE, 3) and pixels.dtype == np.uint8
    return pixels


@FUZZ
@given(st.binary(max_size=4096))
@example(b"")
@example(b"%PDF-1.4 not an image")
@example(b"\x89PNG\r\n\x1a\n")  # a PNG signature and nothing else
def test_arbitrary_bytes(data: bytes) -> None:
    decodes_or_bad_input(data)


@FUZZ
@given(st.sampled_from(["jpeg", "png"]), st.data())
def test_truncated_images(kind: str, data) -> None:
    whole = jpeg() if kind == "jpeg" else png()
    cut = data.draw(st.integers(min_value=0, max_value=len(whole) - 1))
    decodes_or_bad_input(whole[:cut])


@FUZZ
@given(st.sampled_from(["jpeg", "png"]), st.data())
def test_corrupted_images(kind: str, data) -> None:
    raw = bytearray(jpeg() if kind == "jpeg" else png())
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        raw[data.draw(st.integers(min_value=0, max_value=len(raw) - 1))] = data.draw(st.integers(0, 255))
    decodes_or_bad_input(bytes(raw))


@given(st.integers(min_value=1001, max_value=20_000), st.integers(min_value=1001, max_value=3_000))
@settings(max_examples=10, deadline=None)
def test_decompression_bombs_are_refused_from_the_header(width: int, height: int) -> None:
    with pytest.raises(BadInput, match=f"{width}x{height} pixels exceeds limit"):
        decode_image(png_bomb(width, height), SIZE, MAX_PIXELS)


def test_a_real_bomb_is_small_on_the_wire_and_refused() -> None:
    bomb = png_bomb(10_000, 10_000)  # 100 M pixels
    assert len(bomb) < 100_000
    with pytest.raises(BadInput, match="10000x10000 pixels exceeds limit"):
        decode_image(bomb, SIZE, MAX_PIXELS)


def test_a_usable_image_decodes() -> None:
    assert decodes_or_bad_input(jpeg()) is not None
    assert decodes_or_bad_input(png()) is not None


@pytest.mark.parametrize("image", [b"", b"\x00" * 64, b"GIF89a", b"<svg xmlns='http://www.w3.org/2000/svg'/>"])
def test_posts_with_unusable_images_parse_and_then_fail_to_decode(image: bytes) -> None:
    post = parse_post(post_json(text="", image=image), 1 << 20)
    assert post.image == image
    with pytest.raises(BadInput, match="undecodable image"):
        decode_image(post.image or b"", SIZE, MAX_PIXELS)
