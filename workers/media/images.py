"""Image bytes -> upright uint8 RGB pixels at the model's size, plus the header facts (aspect) and a thumbnail.

Tokenisation and text normalisation live in `workers.radm.processor` (they depend on the model's encoders).
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import simplejpeg
from PIL import Image

from schemas.reasons import BadInput, ReasonCode

JPEG_SIGNATURE = b"\xff\xd8\xff"


def decode_image(data: bytes, image_size: int, max_pixels: int) -> np.ndarray:
    """Bytes -> uint8 RGB array (image_size, image_size, 3), the layout `RADMProcessor.image_tensor` takes.

    Pixels stay 8-bit until the model's process builds its batch: a quarter of float32's bytes to queue,
    hand to the model process and pickle. The size check reads only the header, so a decompression bomb
    is refused before any pixel is decoded. JPEGs (nearly every photo on social media) go straight to
    libjpeg-turbo through simplejpeg; anything else, and any JPEG it refuses, through PIL. Either way the
    image is turned upright by its EXIF orientation, as a phone's gallery shows it: phones store a portrait
    photo as a landscape one with orientation 6 or 8.
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

    Less CPU than PIL (`bench/exploratory/cpu_decode_ab.py`): PIL parses the markers in Python and copies the
    pixels once more. The whole decode runs without the GIL, so the decode threads scale."""
    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    if width * height > max_pixels:
        raise BadInput(ReasonCode.IMAGE_TOO_LARGE, f"image of {width}x{height} pixels exceeds limit of {max_pixels}")
    scale = draft_scale(width, height, image_size)
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=-(-height // scale),
                                        min_width=-(-width // scale))
    except ValueError:
        return None
    orientation = jpeg_orientation(data)
    if orientation == 1 and pixels.shape[:2] == (image_size, image_size):
        return pixels
    return _fit(upright(Image.fromarray(pixels), orientation), image_size)


ORIENTATION_TAG = 0x0112

_TRANSPOSES = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
"""EXIF orientation -> the transpose that makes the image upright (as `PIL.ImageOps.exif_transpose` does)."""


def upright(image: Image.Image, orientation: object = None) -> Image.Image:
    """`image` turned by its EXIF `orientation` (by default read from the image), as a gallery shows it; the
    image itself when it is upright already. Training (`load_image`) turns its photos the same way."""
    if orientation is None:
        orientation = exif_orientation(image)
    transpose = _TRANSPOSES.get(orientation) if isinstance(orientation, int) else None  # a malformed tag: as is
    return image.transpose(transpose) if transpose is not None else image


def exif_orientation(image: Image.Image) -> object:
    """The orientation tag of an image PIL opened (1 without EXIF, or when its EXIF block is broken)."""
    try:
        return image.getexif().get(ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - PIL raises many types for a broken EXIF block; the pixels are fine
        return 1


def jpeg_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) of a JPEG, 1 when it has none or it cannot be read.

    Walks the marker segments before the image data to the APP1 "Exif" one and reads tag 0x0112 of its
    first IFD: a few microseconds, where opening the file with PIL to ask it parses every segment in Python."""
    position, end = 2, len(data)
    while position + 4 <= end and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no EXIF before the pixels
            return 1
        length = int.from_bytes(data[position + 2:position + 4], "big")
        if marker == 0xE1 and data[position + 4:position + 10] == b"Exif\0\0":
            return _tiff_orientation(data[position + 10:position + 2 + length])
        position += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    directory = int.from_bytes(tiff[4:8], order)
    entries = int.from_bytes(tiff[directory:directory + 2], order)
    for entry in range(directory + 2, directory + 2 + 12 * entries, 12):
        if entry + 12 > len(tiff):
            break
        if int.from_bytes(tiff[entry:entry + 2], order) == ORIENTATION_TAG:
            value = int.from_bytes(tiff[entry + 8:entry + 10], order)  # a SHORT, left-justified in the entry
            return value if value in _TRANSPOSES else 1
    return 1


def draft_scale(width: int, height: int, image_size: int) -> int:
    """The DCT scale PIL's `Image.draft` decodes a JPEG at for this size (1/8, 1/4, 1/2 or 1): the largest
    that keeps both sides at least `image_size`. libjpeg-turbo also offers scales between those (7/8, 5/8...);
    keeping PIL's keeps the pixels a checkpoint was trained on."""
    fits = min(width // image_size, height // image_size)
    return next(scale for scale in (8, 4, 2) if fits >= scale) if fits >= 2 else 1


def upright_aspect(data: bytes) -> float:
    """Width over height of an image as a gallery shows it (EXIF orientations 5-8 swap the sides), read from
    its header only. For a JPEG a few microseconds; other formats go through PIL, which parses the header."""
    if data.startswith(JPEG_SIGNATURE):
        with contextlib.suppress(ValueError):
            height, width, _, _ = simplejpeg.decode_jpeg_header(data)
            return _aspect(width, height, jpeg_orientation(data))
    with Image.open(io.BytesIO(data)) as img:
        if img.format == "PNG" and "exif" not in img.info:
            return _aspect(*img.size, 1)  # PIL would decode every pixel to look for an eXIf chunk after them
        return _aspect(*img.size, exif_orientation(img))


def _aspect(width: int, height: int, orientation: object) -> float:
    sideways = orientation in (5, 6, 7, 8)
    return (height / width) if sideways else (width / height)


def thumbnail_jpeg(pixels: np.ndarray, aspect: float, max_side: int, quality: int = 80) -> bytes:
    """A small JPEG of a decoded image for dashboards: the model's square pixels stretched back to the image's
    `aspect` (`upright_aspect`), at most `max_side` pixels on the longer side and never larger than the pixels
    themselves. Made from what the worker decoded anyway: no second decode of the original.

    `reducing_gap` first averages whole blocks of pixels (`Image.reduce`), then filters what is left: cheaper than
    filtering all of it (`bench/exploratory/cpu_thumbnail.py`)."""
    side = min(max_side, pixels.shape[0])
    size = (side, max(1, round(side / aspect))) if aspect >= 1 else (max(1, round(side * aspect)), side)
    small = Image.fromarray(pixels).resize(size, Image.Resampling.BILINEAR, reducing_gap=1.0)
    return simplejpeg.encode_jpeg(np.asarray(small), quality=quality, colorspace="RGB")


def _decode_with_pil(data: bytes, image_size: int, max_pixels: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise BadInput(ReasonCode.IMAGE_TOO_LARGE,
                               f"image of {width}x{height} pixels exceeds limit of {max_pixels}")
            img.draft("RGB", (image_size, image_size))  # JPEG: decode at reduced scale
            oriented = upright(img)
            # convert copies every pixel: only when the image needs it
            return _fit(oriented.convert("RGB") if oriented.mode != "RGB" else oriented, image_size)
    except BadInput:
        raise
    except Exception as exc:  # noqa: BLE001 - PIL raises many types for corrupt data
        raise BadInput(ReasonCode.UNDECODABLE_IMAGE, f"undecodable image: {exc}") from None


def _fit(rgb: Image.Image, image_size: int) -> np.ndarray:
    """Resized (bilinear, antialiased when shrinking) to the model's square; a copy only when the size differs."""
    if rgb.size != (image_size, image_size):
        rgb = rgb.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)
