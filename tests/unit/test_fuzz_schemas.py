"""Property-based fuzzing of the wire contracts: whatever bytes arrive, parsing ends in a Post or BadInput
(workers) and a SentimentResult or ValidationError (sink), never in another exception type."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import Post, SentimentResult
from schemas.messages import MAX_TEXT_CHARS
from schemas.reasons import BadInput
from tests.faults.bad_inputs import post_json
from workers.agent.posts import parse_post

LIMIT = 64 * 1024
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELDS = ("post_id", "created_at", "text", "image", "image_url", "brands", "keywords", "source", "lang")


def parses_or_bad_input(raw: bytes | None) -> Post | None:
    try:
        return parse_post(raw, LIMIT)
    except BadInput as exc:
        assert str(exc), "every rejection has a reason"
        return None


@FUZZ
@given(st.binary(max_size=2048))
@example(b"")
@example(b"\xff\xfe\xfd")  # invalid UTF-8
@example(b'{"post_id": "a", "created_at": "2026-01-01T00:00:00Z", "text": "\xc3\x28"}')
@example(b"[" * 10_000)  # nesting deeper than any parser recursion limit
@example(b'{"post_id": "a", "created_at": "2026-01-01T00:00:00Z", "text": "x"')  # truncated
def test_arbitrary_bytes(raw: bytes) -> None:
    parses_or_bad_input(raw)


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), json_values, max_size=8))
def test_arbitrary_json_objects(fields: dict) -> None:
    post = parses_or_bad_input(json.dumps(fields).encode())
    if post is not None:
        assert set(fields) <= set(FIELDS)
        assert len(post.text) <= MAX_TEXT_CHARS and post.created_at.tzinfo is not None


@FUZZ
@given(st.text(min_size=1, max_size=20).filter(lambda name: name not in FIELDS), json_values)
def test_unknown_fields_are_refused(name: str, value) -> None:
    with pytest.raises(BadInput, match="Extra inputs are not permitted"):
        parse_post(post_json(**{name: value}), LIMIT)


@FUZZ
@given(st.datetimes(timezones=st.timezones() | st.none()))
@example("0001-01-01T00:00:00+01:00")  # UTC is before year 1: used to raise OverflowError
@example("9999-12-31T23:59:59-05:00")  # ... after year 9999
def test_any_timestamp_parses_to_utc_or_is_refused(moment) -> None:
    stamp = moment if isinstance(moment, str) else moment.isoformat()
    post = parses_or_bad_input(post_json(created_at=stamp))
    if post is not None:
        assert post.created_at.utcoffset().total_seconds() == 0


@given(st.integers(min_value=MAX_TEXT_CHARS + 1, max_value=50 * MAX_TEXT_CHARS))
@settings(max_examples=20, deadline=None)
def test_huge_text_is_refused_not_truncated(length: int) -> None:
    with pytest.raises(BadInput, match="at most 4000"):
        parse_post(post_json(text="é" * length), 1 << 24)


@given(st.integers(min_value=1, max_value=4096))
@settings(max_examples=30, deadline=None)
def test_messages_over_the_byte_limit_are_refused_unread(extra: int) -> None:
    raw = post_json(text="x") + b" " * (LIMIT + extra)
    with pytest.raises(BadInput, match="exceeds limit"):
        parse_post(raw, LIMIT)


def test_empty_message_is_refused() -> None:
    with pytest.raises(BadInput, match="empty message"):
        parse_post(None, LIMIT)


@FUZZ
@given(st.binary(max_size=1024) | st.dictionaries(st.text(max_size=12), json_values, max_size=8).map(
    lambda d: json.dumps(d).encode()))
@example(b'{"post_id": "a", "created_at": "0001-01-01T00:00:00+01:00", "label": "positive", "probabilities": {},'
         b' "model_version": "m", "latency_ms": 1}')
def test_sink_side_results_parse_or_raise_validation_error(raw: bytes) -> None:
    """The sink dead-letters on ValidationError only: anything else would stop its agent."""
    with contextlib.suppress(ValidationError):
        SentimentResult.model_validate_json(raw)
