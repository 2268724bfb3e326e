"""Worker metrics: bounded reason labels, a busy port never stops a worker, the agent counts what it does."""

import socket
from datetime import UTC, datetime  # noqa: E402 - grouped with the test below

from prometheus_client import REGISTRY

from core.metrics import reason_label, serve_metrics
from schemas import Post  # noqa: E402
from tests.unit.test_agent import harness, wait_for  # noqa: F401 - pytest fixture reused


def test_dead_letter_reasons_map_to_a_few_labels():
    assert reason_label("message of 9000000 bytes exceeds limit of 8388608") == "message_too_large"
    assert reason_label("invalid post: created_at: Field required") == "invalid_post"
    assert reason_label("image of 20000x20000 pixels exceeds limit of 40000000") == "image_too_large"
    assert reason_label("undecodable image: cannot identify image file") == "undecodable_image"
    assert reason_label("internal error preparing the post: ZeroDivisionError()") == "internal_error"
    assert reason_label("something new") == "other"


def test_a_port_in_use_is_logged_not_fatal():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        assert serve_metrics(taken.getsockname()[1]) is False
    assert serve_metrics(0) is False


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_agent_counts_scored_and_dead_posts(harness):  # noqa: F811
    agent, sent = harness
    before = (value("monitor_worker_posts_total", outcome="scored"),
              value("monitor_worker_dead_letters_total", reason="invalid_post"),
              value("monitor_worker_batch_size_count"))
    async with agent.test_context() as context:
        for i in range(3):
            post = Post(post_id=f"m{i}", created_at=datetime.now(UTC), text="fine")
            await context.put(post.model_dump_json().encode())
        await context.put(b"not json")
        await wait_for(lambda: len(sent["sentiment"]) == 3 and len(sent["dlq"]) == 1)
    assert value("monitor_worker_posts_total", outcome="scored") - before[0] == 3
    assert value("monitor_worker_dead_letters_total", reason="invalid_post") - before[1] == 1
    assert value("monitor_worker_batch_size_count") - before[2] >= 1
