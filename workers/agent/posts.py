"""Raw Kafka bytes -> a validated Post, or `BadInput` with the reason it goes to the dead-letter topic."""

from __future__ import annotations

from pydantic import ValidationError

from schemas import Post
from schemas.reasons import BadInput, ReasonCode

UTF8_BOM = b"\xef\xbb\xbf"
"""Some Windows tools start UTF-8 text with it; JSON parsers refuse it (RFC 8259 lets them ignore it)."""


def parse_post(raw: bytes | None, max_bytes: int) -> Post:
    if raw is None:
        raise BadInput(ReasonCode.EMPTY, "empty message")
    if len(raw) > max_bytes:
        raise BadInput(ReasonCode.MESSAGE_TOO_LARGE, f"message of {len(raw)} bytes exceeds limit of {max_bytes}")
    try:
        return Post.model_validate_json(raw.removeprefix(UTF8_BOM))
    except ValidationError as exc:
        errors = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()[:5])
        raise BadInput(ReasonCode.INVALID_POST, f"invalid post: {errors}") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:  # a validator bug must not crash a batch
        raise BadInput(ReasonCode.INVALID_POST, f"invalid post: {type(exc).__name__}: {exc}"[:500]) from None
