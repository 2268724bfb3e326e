"""Worker metrics: stable reason labels, a busy port stops a process with the reason, the agent counts what it does."""

import socket
from datetime import UTC, datetime  # noqa: E402 - grouped with the test below

import psutil
import pytest
from prometheus_client import REGISTRY

from core.metrics import MetricsPortInUse, serve_metrics
from schemas import Post  # noqa: E402
from schemas.reasons import BadInput, ReasonCode
from tests.unit.test_agent import harness, wait_for  # noqa: F401 - pytest fixture reused
from workers.agent.posts import parse_post


@pytest.mark.parametrize(("raw", "code"), [
    (None, ReasonCode.EMPTY),
    (b"x" * 101, ReasonCode.MESSAGE_TOO_LARGE),
    (b"{not json", ReasonCode.INVALID_POST),
    (b'{"post_id": "p1"}', ReasonCode.INVALID_POST),
])
def test_every_rejection_carries_its_code(raw, code):
    """Metrics and DLQ consumers read the code; the message says the details."""
    with pytest.raises(BadInput) as caught:
        parse_post(raw, max_bytes=100)
    assert caught.value.code is code and str(caught.value)


def test_reason_codes_are_stable_label_values():
    """Grafana's "dead letters by reason" panel and alerting rules use these values: renaming one breaks them."""
    assert {code.value for code in ReasonCode} == {
        "empty", "message_too_large", "invalid_post", "image_too_large", "undecodable_image", "linked_image",
        "inference_failed", "internal_error", "invalid_result", "invalid_deletion", "malformed_source_event"}


def test_a_port_in_use_stops_the_process_with_the_reason():
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MetricsPortInUse, match=f"METRICS_PORT {port} is already in use"):
            serve_metrics(port)
    assert serve_metrics(0) is False


def test_metrics_listen_on_loopback_unless_told_otherwise():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert serve_metrics(port) is True
    listening = {c.laddr for c in psutil.Process().net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    assert ("127.0.0.1", port) in listening and ("0.0.0.0", port) not in listening


def test_a_post_behind_a_utf8_byte_order_mark_is_read():
    raw = b"\xef\xbb\xbf" + b'{"post_id": "bom", "created_at": 1765000000, "text": "hello"}'
    post = parse_post(raw, max_bytes=1000)
    assert post.post_id == "bom" and post.created_at.year == 2025


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
