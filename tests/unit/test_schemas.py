import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas import DeadLetter, Post, SentimentResult, json_schemas
from schemas.messages import MAX_TEXT_CHARS
from schemas.reasons import ReasonCode


def post_json(**overrides) -> str:
    body = {"post_id": "p1", "created_at": "2026-03-01T12:00:00Z", "text": "hello", "brands": ["Acme"]}
    body.update(overrides)
    return json.dumps(body)


def test_post_parses_and_normalises_tags_and_time():
    post = Post.model_validate_json(post_json(brands=[" Acme ", "GLOBEX"]))
    assert post.brands == ["acme", "globex"]
    assert post.created_at == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_naive_and_offset_times_become_utc():
    naive = Post(post_id="a", created_at=datetime(2026, 1, 1, 10, 0), text="x")
    offset = Post(post_id="b", created_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))), text="x")
    assert naive.created_at == offset.created_at == datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def test_image_bytes_travel_as_base64():
    post = Post(post_id="a", created_at=datetime.now(UTC), image=b"\xff\xd8raw-bytes")
    wire = post.model_dump_json()
    assert "raw-bytes" not in wire
    assert Post.model_validate_json(wire).image == b"\xff\xd8raw-bytes"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"post_id": ""}, "post_id"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, "text"),
        ({"brands": "acme"}, "brands"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_validation_errors_name_the_field(overrides, field):
    with pytest.raises(ValidationError) as info:
        Post.model_validate_json(post_json(**overrides))
    assert field in {str(loc) for error in info.value.errors() for loc in error["loc"]}


def test_post_needs_text_or_image():
    with pytest.raises(ValidationError, match="neither text nor image"):
        Post.model_validate_json(post_json(text="   "))


def test_sentiment_result_polarity_and_roundtrip():
    result = SentimentResult(post_id="p", created_at=datetime.now(UTC), label="positive",
                             probabilities={"negative": 0.1, "neutral": 0.2, "positive": 0.7},
                             model_version="v", latency_ms=1.0)
    assert result.polarity == pytest.approx(0.6)
    assert SentimentResult.model_validate_json(result.model_dump_json()) == result


def test_dead_letter_keeps_raw_payload():
    letter = DeadLetter(code=ReasonCode.INVALID_POST, reason="bad", topic="posts", payload=b"\x00not json")
    assert DeadLetter.model_validate_json(letter.model_dump_json()).payload == b"\x00not json"


def test_json_schemas_exported_for_wire_messages():
    schemas = json_schemas()
    assert set(schemas) == {"Post", "PostDeletion", "SentimentResult", "DeadLetter", "ModelAssignment"}
    assert "post_id" in schemas["Post"]["required"]
    assert schemas["Post"]["additionalProperties"] is False


def test_exported_json_schemas_match_the_models():
    """schemas/json is what non-Python producers read: `make schemas` must have been run after a change."""
    import json
    from pathlib import Path

    from schemas import json_schemas

    folder = Path(__file__).resolve().parents[2] / "schemas" / "json"
    for name, body in json_schemas().items():
        assert json.loads((folder / f"{name}.schema.json").read_text()) == body, f"{name}: run `make schemas`"
