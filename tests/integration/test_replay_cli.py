"""`monitor replay` as ops run it (the compose `replay` profile): generated sample posts onto the topic."""

from __future__ import annotations

import pytest

from schemas import Post
from tests.integration.cli_helpers import monitor
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration


async def test_replay_publishes_sample_posts(stack, settings, engine):
    done = monitor(stack, "replay", env={"REPLAY_SAMPLES": "30", "REPLAY_RATE": "500"})
    assert done.returncode == 0, done.stderr
    assert "published 30 sample posts" in done.stdout
    wanted = {f"sample-7-{i}" for i in range(30)}
    messages = await read_topic(settings, settings.kafka.posts_topic,
                                lambda msgs: wanted <= {m.key.decode() for m in msgs if m.key})
    posts = [Post.model_validate_json(m.value) for m in messages if m.key and m.key.decode() in wanted]
    assert {p.source for p in posts} == {"sample"}
