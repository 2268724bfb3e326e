"""Reading text files whose encoding nobody wrote down (MVSA posts, scraped tweet corpora)."""

from __future__ import annotations

from pathlib import Path

_FALLBACKS = ("cp1252", "latin-1")


def _decode_line(line: bytes) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for encoding in _FALLBACKS:
        try:
            return line.decode(encoding)
        except UnicodeDecodeError:
            continue
    return line.decode("latin-1")  # unreachable: latin-1 maps every byte; kept for the type checker


def decode_robust(data: bytes) -> str:
    """UTF-8 when the whole text is UTF-8 (with or without BOM); otherwise line by line, so one stray
    cp1252 byte does not force a wrong encoding onto the lines that are valid UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(_decode_line(line) for line in data.splitlines(keepends=True))


def read_text(path: Path) -> str:
    return decode_robust(path.read_bytes())
