import io
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image

from schemas import Post
from workers import preprocess
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


def photo_jpeg(mode: str, size: tuple[int, int], **options) -> bytes:
    """A real photo (detail at every scale, unlike a flat colour), encoded as the given JPEG."""
    import skimage.data

    buffer = io.BytesIO()
    Image.fromarray(skimage.data.astronaut()).convert(mode).resize(size).save(buffer, "JPEG", **options)
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
@pytest.mark.parametrize("size", [(224, 224), (640, 480), (300, 300), (50, 40), (2000, 33)])
@pytest.mark.parametrize("image_size", [SIZE, 224])
def test_jpegs_decode_to_the_pixels_pil_gives(mode, size, image_size):
    """The libjpeg-turbo path decodes at PIL's DCT scale, so a checkpoint sees the pixels it was trained on."""
    data = photo_jpeg(mode, size, progressive=size == (640, 480))
    fast = preprocess._decode_jpeg(data, image_size, max_pixels=10**7)
    assert fast is not None, "libjpeg-turbo refused a valid JPEG"
    pil = preprocess._decode_with_pil(data, image_size, max_pixels=10**7)
    tolerance = 1 if mode == "CMYK" else 0  # PIL rounds its CMYK -> RGB conversion differently
    assert fast.shape == (image_size, image_size, 3) and fast.dtype == np.uint8
    assert np.abs(fast.astype(int) - pil.astype(int)).max() <= tolerance


@pytest.mark.parametrize(("width", "height", "image_size", "scale"),
                         [(224, 224, 224, 1), (447, 500, 224, 1), (448, 448, 224, 2), (1080, 1350, 224, 4),
                          (4000, 3000, 224, 8), (224, 224, 32, 4), (256, 256, 32, 8), (40, 40, 32, 1)])
def test_draft_scale_is_pils(width, height, image_size, scale):
    assert preprocess.draft_scale(width, height, image_size) == scale
    img = Image.open(io.BytesIO(jpeg(width, height)))
    img.draft("RGB", (image_size, image_size))
    assert img.size == (-(-width // scale), -(-height // scale))


def test_jpeg_bomb_is_refused_from_its_header():
    """A small JPEG whose frame header claims 60000x60000 pixels: refused before libjpeg-turbo decodes it."""
    data = bytearray(jpeg(16, 16))
    frame = data.index(b"\xff\xc0")  # SOF0: length(2) precision(1) height(2) width(2)
    data[frame + 5:frame + 9] = (60000).to_bytes(2, "big") * 2
    with pytest.raises(BadInput, match="60000x60000 pixels exceeds limit"):
        decode_image(bytes(data), SIZE, max_pixels=10**7)


def test_truncated_jpeg_is_explained_by_pil():
    data = photo_jpeg("RGB", (224, 224))
    assert preprocess._decode_jpeg(data[: len(data) // 2], SIZE, max_pixels=10**7) is None
    with pytest.raises(BadInput, match="undecodable image"):
        decode_image(data[: len(data) // 2], SIZE, max_pixels=10**7)
