"""`monitor ingest file` on the test broker: CSV, JSON Lines and Parquet exports in, every row on the posts topic
once, bad rows dead-lettered, and an import killed with SIGKILL resuming without a gap."""

from __future__ import annotations

import asyncio
import csv
import functools
import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client import REGISTRY

from connectors.cursor import CursorStore
from connectors.files import FileSource
from connectors.filters import PostFilter
from connectors.runner import IngestRunner
from core.streaming.topics import ensure_topics
from schemas import DeadLetter, Post
from schemas.reasons import ReasonCode
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

START = datetime(2026, 5, 1, 12, tzinfo=UTC)


def rows(count: int, prefix: str) -> list[dict]:
    return [{"id": f"{prefix}-{i}", "when": (START + timedelta(seconds=i)).isoformat(),
             "body": f"post {i} about {'Acme' if i % 2 else 'Globex'} #deal", "language": "en"} for i in range(count)]


@pytest.fixture
async def topics(settings):
    run = uuid.uuid4().hex[:8]
    local = settings.replace(posts_topic=f"ingest-posts-{run}", dlq_topic=f"ingest-dlq-{run}",
                             deletions_topic=f"ingest-deletions-{run}")
    await ensure_topics(local)
    return local


async def run_file(settings, source: FileSource, tmp_path, post_filter: PostFilter | None = None):
    runner = IngestRunner(settings, source, CursorStore(tmp_path / f"{source.name}.json"), post_filter=post_filter)
    return await runner.run()


async def published(settings, count: int) -> list[Post]:
    messages = await read_topic(settings, settings.kafka.posts_topic, lambda m: len(m) >= count, quiet_s=0.5)
    return [Post.model_validate_json(m.value) for m in messages]


@pytest.mark.parametrize("file_format", ["csv", "jsonl", "parquet"])
async def test_each_format_publishes_every_row_once(topics, tmp_path, file_format):
    data = rows(50, file_format)
    path = tmp_path / f"export.{file_format}"
    if file_format == "csv":
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows(data)
    elif file_format == "jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in data))
    else:
        pq.write_table(pa.Table.from_pylist(data), path, row_group_size=16)
    source = FileSource(path, columns={"post_id": "id", "created_at": "when", "text": "body", "lang": "language"},
                        source="export", progress=False)
    summary = await run_file(topics, source, tmp_path)
    assert (summary.posts, summary.malformed) == (50, 0)
    posts = await published(topics, 50)
    assert sorted(p.post_id for p in posts) == sorted(row["id"] for row in data)
    first = next(p for p in posts if p.post_id == f"{file_format}-1")
    assert (first.text, first.lang, first.source, first.created_at) == ("post 1 about Acme #deal", "en", "export",
                                                                        START + timedelta(seconds=1))
    assert CursorStore(tmp_path / f"{source.name}.json").load()["row"] == 50


async def test_filters_tag_matches_and_bad_rows_go_to_the_dead_letter_topic(topics, tmp_path):
    path = tmp_path / "mixed.jsonl"
    good = [Post(post_id=f"mixed-{i}", created_at=START, text=f"{'acme' if i % 2 else 'other'} thing {i}", lang="en")
            for i in range(10)]
    lines = [p.model_dump_json() for p in good[:5]] + ["{not json", '{"post_id": "no-time", "text": "x"}']
    lines += [p.model_dump_json() for p in good[5:]]
    path.write_text("\n".join(lines) + "\n")
    name = f"file-mixed-{uuid.uuid4().hex[:6]}"
    summary = await run_file(topics, FileSource(path, progress=False, name=name), tmp_path,
                             PostFilter(track=("acme",)))
    assert (summary.posts, summary.filtered, summary.malformed) == (5, 5, 2)
    metric = functools.partial(REGISTRY.get_sample_value, labels={"connector": name})
    assert (metric("monitor_ingest_events_received_total"), metric("monitor_ingest_events_filtered_total"),
            metric("monitor_ingest_events_malformed_total")) == (12, 5, 2)
    assert REGISTRY.get_sample_value("monitor_ingest_produced_total", {"connector": name, "kind": "post"}) == 5
    assert metric("monitor_ingest_seconds_behind_source") > 0  # the rows are from May 2026
    posts = await published(topics, 5)
    assert {p.post_id for p in posts} == {f"mixed-{i}" for i in range(1, 10, 2)}
    assert all(p.keywords == ["acme"] for p in posts)
    letters = await read_topic(topics, topics.kafka.dlq_topic, lambda m: len(m) >= 2, quiet_s=0.5)
    letters = [DeadLetter.model_validate_json(m.value) for m in letters]
    assert {letter.code for letter in letters} == {ReasonCode.MALFORMED_SOURCE_EVENT}
    assert sorted(letter.payload for letter in letters) == sorted([b"{not json\n", b'{"post_id": "no-time", '
                                                                   b'"text": "x"}\n'])
    assert all("mixed.jsonl row" in letter.reason for letter in letters)


async def test_an_import_killed_mid_file_resumes_without_a_gap(stack, topics, tmp_path):
    count = 20_000
    path = tmp_path / "big.jsonl"
    path.write_text("".join(Post(post_id=f"big-{i}", created_at=START, text=f"post number {i}").model_dump_json()
                            + "\n" for i in range(count)))
    env = {**os.environ, **stack.env(), "LOG_LEVEL": "WARNING", "POSTS_TOPIC": topics.kafka.posts_topic,
           "DLQ_TOPIC": topics.kafka.dlq_topic, "DELETIONS_TOPIC": topics.kafka.deletions_topic,
           "INGEST_STATE_DIR": str(tmp_path / "state"), "INGEST_CURSOR_FLUSH_S": "0.05",
           "INGEST_MAX_IN_FLIGHT": "500"}
    command = [sys.executable, "-m", "monitor", "ingest", "file", str(path), "--no-progress", "--name", "big"]
    cursor = CursorStore(tmp_path / "state" / "big.json")
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while (cursor.load() or {}).get("row", 0) < 2000:
            assert first.poll() is None, first.communicate()[1]
            assert asyncio.get_running_loop().time() < deadline, "no progress"
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait()
    killed_at = cursor.load()["row"]
    assert killed_at < count, "the import finished before the kill: make the file larger"

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert f"{count - killed_at} posts" in second.stdout  # resumed after the acknowledged rows, not from row 1
    assert cursor.load()["row"] == count
    messages = await read_topic(topics, topics.kafka.posts_topic,
                                lambda m: len({x.key for x in m}) >= count, timeout_s=120)
    assert {m.key.decode() for m in messages} == {f"big-{i}" for i in range(count)}


def test_the_command_says_what_is_wrong_without_a_traceback(tmp_path):
    export = tmp_path / "posts.jsonl"
    export.write_text(Post(post_id="p", created_at=START, text="x").model_dump_json() + "\n")
    base = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP"}
    command = [sys.executable, "-m", "monitor", "ingest", "file", str(export), "--no-progress"]
    unset = subprocess.run(command, env=base, capture_output=True, text=True, timeout=60)
    unreachable = subprocess.run(command, env={**base, "KAFKA_BOOTSTRAP": "127.0.0.1:1"}, capture_output=True,
                                 text=True, timeout=60)
    assert unset.returncode == 2 and "KAFKA_BOOTSTRAP is not set" in unset.stderr
    assert unreachable.returncode == 1 and "cannot reach the broker at 127.0.0.1:1" in unreachable.stderr
    assert "Traceback" not in unset.stderr + unreachable.stderr
