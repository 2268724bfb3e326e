"""`monitor replay` as ops run it (the compose `replay` profile): a recording in, every post on the topic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas import Post
from tests.integration.cli_helpers import monitor
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration


async def test_replay_publishes_a_recording(stack, settings, engine, tmp_path):
    posts = [Post(post_id=f"replayed-{i}", created_at=datetime(2026, 3, 1, tzinfo=UTC), text=f"recorded post {i}",
                  brands=["acme"]) for i in range(30)]
    recording = tmp_path / "posts.jsonl"
    recording.write_text("\n".join(post.model_dump_json() for post in posts) + "\n")
    done = monitor(stack, "replay", env={"REPLAY_FILE": str(recording), "REPLAY_RATE": "500"})
    assert done.returncode == 0, done.stderr
    assert "published 30 posts" in done.stdout

    wanted = {post.post_id for post in posts}
    messages = await read_topic(settings, settings.kafka.posts_topic,
                                lambda msgs: wanted <= {m.key.decode() for m in msgs if m.key})
    published = [Post.model_validate_json(m.value) for m in messages if m.key and m.key.decode() in wanted]
    assert sorted(published, key=lambda p: p.post_id) == sorted(posts, key=lambda p: p.post_id)


def test_replay_names_the_bad_line(stack, tmp_path):
    recording = tmp_path / "posts.jsonl"
    recording.write_text('{"post_id": "ok", "created_at": "2026-01-01T00:00:00Z", "text": "fine"}\nnot json\n')
    done = monitor(stack, "replay", env={"REPLAY_FILE": str(recording)})
    assert done.returncode != 0
    assert "posts.jsonl:2" in done.stderr
