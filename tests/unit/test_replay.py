"""Reading recorded posts for `monitor replay`: good lines become posts, a bad line names itself."""

from datetime import UTC, datetime

import pytest

from monitor.devstack.replay import as_payloads, posts_from_jsonl
from schemas import Post


def test_jsonl_round_trip_and_keys(tmp_path):
    posts = [Post(post_id=f"p{i}", created_at=datetime(2026, 1, 1, tzinfo=UTC), text=f"post {i}") for i in range(3)]
    path = tmp_path / "posts.jsonl"
    path.write_text("\n".join(p.model_dump_json() for p in posts) + "\n\n")
    assert list(posts_from_jsonl(path)) == posts
    assert [key for key, _ in as_payloads(posts)] == [b"p0", b"p1", b"p2"]


def test_bad_line_is_reported_with_its_number(tmp_path):
    path = tmp_path / "posts.jsonl"
    path.write_text('{"post_id": "ok", "created_at": "2026-01-01T00:00:00Z", "text": "fine"}\n{"post_id": "x"}\n')
    with pytest.raises(ValueError, match=r"posts.jsonl:2: "):
        list(posts_from_jsonl(path))
