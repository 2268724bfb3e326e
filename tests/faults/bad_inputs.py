"""Hostile payloads for the decoding path, shared by the fuzz unit tests and the bad-input scenario."""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib

from PIL import Image


def png_bomb(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of all-zero pixels: tiny on the wire, width*height pixels once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, "JPEG")
    return buffer.getvalue()


def post_json(**fields) -> bytes:
    """A post with the given fields over a valid base; bytes are base64-encoded as the contract says."""
    post = {"post_id": "p", "created_at": "2026-11-22T10:00:00Z", "text": "love it"}
    for name, value in fields.items():
        post[name] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return json.dumps({k: v for k, v in post.items() if v is not ...}).encode()
