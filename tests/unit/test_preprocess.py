import io
import struct
import zlib
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image, ImageOps

from schemas import Post
from schemas.reasons import BadInput
from workers.agent.posts import parse_post
from workers.media import images as preprocess
from workers.media.images import decode_image

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


def oriented_jpeg(orientation: int, size: tuple[int, int] = (64, 40)) -> bytes:
    """A landscape photo whose top-left quarter is red, stored with EXIF `orientation`, as a phone writes it."""
    pixels = np.full((size[1], size[0], 3), (20, 60, 200), dtype=np.uint8)
    pixels[: size[1] // 2, : size[0] // 2] = (230, 20, 20)
    exif = Image.Exif()
    exif[preprocess.ORIENTATION_TAG] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95, exif=exif.tobytes())
    return buffer.getvalue()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation_is_the_exif_tag_pil_reads(orientation):
    data = oriented_jpeg(orientation)
    assert preprocess.jpeg_orientation(data) == Image.open(io.BytesIO(data)).getexif()[preprocess.ORIENTATION_TAG]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_both_decoders_turn_photos_upright_as_pil_exif_transpose_does(orientation):
    data = oriented_jpeg(orientation)
    with Image.open(io.BytesIO(data)) as img:  # no DCT scaling at these sizes: exact pixels expected
        expected = np.asarray(ImageOps.exif_transpose(img).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    fast = preprocess._decode_jpeg(data, SIZE, max_pixels=10**7)
    assert fast is not None
    assert np.array_equal(fast, expected)
    assert np.array_equal(preprocess._decode_with_pil(data, SIZE, max_pixels=10**7), expected)


def test_a_portrait_phone_photo_comes_out_portrait():
    """Orientation 6: stored landscape, viewed turned 90 degrees clockwise: the red corner moves top-right."""
    pixels = decode_image(oriented_jpeg(6), SIZE, max_pixels=10**7).astype(int)
    red = (pixels[..., 0] > 150) & (pixels[..., 2] < 100)
    rows, columns = np.nonzero(red)
    assert rows.mean() < SIZE / 2 and columns.mean() > SIZE / 2


def test_a_big_endian_exif_block_is_read_and_a_broken_one_means_upright():
    entry = (0x0112).to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big") + (8).to_bytes(2, "big")
    tiff = b"MM\x00\x2a" + (8).to_bytes(4, "big") + (1).to_bytes(2, "big") + entry + b"\x00\x00" + b"\x00" * 4
    app1 = b"Exif\x00\x00" + tiff
    data = jpeg()
    with_exif = data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + data[2:]
    assert preprocess.jpeg_orientation(with_exif) == 8
    assert Image.open(io.BytesIO(with_exif)).getexif()[preprocess.ORIENTATION_TAG] == 8
    cut = data[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1[:14] + data[2:]
    assert preprocess.jpeg_orientation(cut) == 1
    assert preprocess.jpeg_orientation(jpeg()) == 1
    assert decode_image(cut, SIZE, max_pixels=10**7).shape == (SIZE, SIZE, 3)


def test_training_loads_photos_upright_as_the_worker_scores_them(tmp_path):
    from workers.training.sources import load_image

    path = tmp_path / "portrait.jpg"
    path.write_bytes(oriented_jpeg(6, size=(64, 40)))
    assert load_image(path).shape == (64, 40, 3)  # stored 64 wide and 40 high; shown 40 wide and 64 high


def png_with_exif(payload: bytes) -> bytes:
    """A 40x30 PNG whose eXIf chunk carries `payload` (a TIFF block, or garbage)."""
    buffer = io.BytesIO()
    pixels = np.zeros((30, 40, 3), dtype=np.uint8)
    pixels[:15, :20] = (230, 20, 20)
    Image.fromarray(pixels).save(buffer, "PNG")
    data = buffer.getvalue()
    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload + struct.pack(">I", zlib.crc32(b"eXIf" + payload))
    return data[:33] + chunk + data[33:]  # after the signature (8 bytes) and IHDR (25)


def test_other_formats_are_turned_upright_too_and_a_broken_exif_block_is_ignored():
    rotated = png_with_exif(b"MM\x00\x2a" + (8).to_bytes(4, "big") + b"\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01"
                            b"\x00\x06\x00\x00" + b"\x00" * 4)
    with Image.open(io.BytesIO(rotated)) as img:
        expected = np.asarray(ImageOps.exif_transpose(img).resize((SIZE, SIZE), Image.Resampling.BILINEAR))
    assert np.array_equal(decode_image(rotated, SIZE, max_pixels=10**7), expected)
    broken = png_with_exif(b"garbage!!")
    with pytest.raises(SyntaxError):
        Image.open(io.BytesIO(broken)).getexif()  # what PIL does with it
    assert decode_image(broken, SIZE, max_pixels=10**7).shape == (SIZE, SIZE, 3)


@pytest.mark.parametrize(("orientation", "aspect"), [(1, 80 / 60), (3, 80 / 60), (6, 60 / 80), (8, 60 / 80)])
def test_upright_aspect_is_width_over_height_as_shown(orientation, aspect):
    assert preprocess.upright_aspect(oriented_jpeg(orientation, size=(80, 60))) == pytest.approx(aspect)


def test_upright_aspect_of_other_formats_reads_their_header_and_exif():
    assert preprocess.upright_aspect(png_with_exif(b"garbage!!")) == pytest.approx(40 / 30)
    rotated = png_with_exif(b"MM\x00\x2a" + (8).to_bytes(4, "big") + b"\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01"
                            b"\x00\x06\x00\x00" + b"\x00" * 4)
    assert preprocess.upright_aspect(rotated) == pytest.approx(30 / 40)
    buffer = io.BytesIO()
    Image.new("RGB", (30, 90)).save(buffer, "PNG")
    assert preprocess.upright_aspect(buffer.getvalue()) == pytest.approx(1 / 3)


@pytest.mark.parametrize(("aspect", "size"), [(4 / 3, (96, 72)), (3 / 4, (72, 96)), (1.0, (96, 96)),
                                              (100.0, (96, 1))])
def test_a_thumbnail_has_the_images_aspect_and_its_longer_side_capped(aspect, size):
    pixels = np.zeros((224, 224, 3), dtype=np.uint8)
    pixels[:, 112:] = (230, 20, 20)  # red right half: still on the right once stretched back
    with Image.open(io.BytesIO(preprocess.thumbnail_jpeg(pixels, aspect, 96))) as thumb:
        assert thumb.format == "JPEG" and thumb.size == size
        if size[0] > 8:
            right = np.asarray(thumb.convert("RGB"))[:, -2]
            assert right[:, 0].mean() > 150 and right[:, 2].mean() < 100


def test_a_thumbnail_is_never_larger_than_the_decoded_pixels():
    with Image.open(io.BytesIO(preprocess.thumbnail_jpeg(np.zeros((32, 32, 3), np.uint8), 2.0, 96))) as thumb:
        assert thumb.size == (32, 16)


def test_the_largest_thumbnail_of_noise_fits_the_schemas_limit():
    from schemas.messages import MAX_THUMBNAIL_BYTES

    noise = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    assert len(preprocess.thumbnail_jpeg(noise, 1.0, 256)) < MAX_THUMBNAIL_BYTES
