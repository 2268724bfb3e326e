"""The Bluesky connector against a local Jetstream (monitor/devstack/sources): every post once on the topic,
deletions on theirs, reconnects from the cursor after drops, resume after kill -9, bad events dead-lettered."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from connectors.backoff import Backoff
from connectors.bluesky import POST_COLLECTION, JetstreamSource
from connectors.cursor import CursorStore
from connectors.filters import PostFilter
from monitor.devstack.sources import JetstreamReplayServer, sample_events
from schemas import DeadLetter, Post, PostDeletion
from tests.integration.ingest_helpers import eventually, private_topics, running
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration


def expected(events: list[dict]) -> tuple[set[str], set[str]]:
    """Post ids a connector must publish (created posts, text or image) and the ids it must report deleted."""
    posts, deleted = set(), set()
    for event in events:
        commit = event.get("commit") or {}
        if event.get("kind") != "commit" or commit.get("collection") != POST_COLLECTION:
            continue
        uri = f"at://{event['did']}/{POST_COLLECTION}/{commit['rkey']}"
        (deleted if commit["operation"] == "delete" else posts).add(uri)
    return posts, deleted


def last_sent(events: list[dict]) -> int:
    """`time_us` of the last event a post subscription receives (Jetstream drops other collections' commits)."""
    return max(e["time_us"] for e in events
               if e.get("kind") != "commit" or (e.get("commit") or {}).get("collection") == POST_COLLECTION)


def source(server: JetstreamReplayServer, **options) -> JetstreamSource:
    return JetstreamSource(server.ws_url, image_cdn=server.url, backoff=Backoff(0.05, 0.2), **options)


async def keys(settings, topic: str, wanted: set[str], timeout_s: float = 60.0) -> list[str]:
    messages = await read_topic(settings, topic, lambda m: wanted <= {x.key.decode() for x in m}, timeout_s=timeout_s)
    return [m.key.decode() for m in messages]


async def test_posts_and_deletions_reach_their_topics_across_server_drops(settings, tmp_path):
    topics = await private_topics(settings)
    events = sample_events(3000, seed=3)
    posts, deleted = expected(events)
    cursor = CursorStore(tmp_path / "bluesky.json")
    async with JetstreamReplayServer(events, events_per_connection=400) as server:
        jetstream = source(server)
        async with running(topics, jetstream, cursor) as runner:
            await eventually(lambda: server.connections >= 1, what="a subscription")
            server.release_all()
            await eventually(lambda: (cursor.load() or {}).get("time_us") == last_sent(events), what="every event",
                             timeout_s=90)
        assert server.connections >= 3, "the server dropped the connection every 400 events"
        resumed = server.cursors[1:]
        assert all(c is not None for c in resumed) and resumed == sorted(resumed)
    published = await keys(topics, topics.kafka.posts_topic, posts)
    assert set(published) == posts  # every created post, nothing else (likes, follows, identity events dropped)
    assert set(await keys(topics, topics.kafka.deletions_topic, deleted)) == deleted
    assert runner.summary.malformed == 0


async def test_filters_and_malformed_events(settings, tmp_path):
    topics = await private_topics(settings)
    events = sample_events(400, seed=4, delete_share=0.0)
    last = events[-1]["time_us"]
    bad_record = {"operation": "create", "collection": POST_COLLECTION, "rkey": "r", "record": "not a record"}
    garbage = [{"kind": "commit", "did": "did:plc:x"},  # no time_us
               {"kind": "commit", "did": "did:plc:x", "time_us": last + 1, "commit": bad_record}]
    async with JetstreamReplayServer(events[:200] + garbage + events[200:]) as server:
        jetstream = source(server)
        post_filter = PostFilter(track=("acme", "#acme"), languages=frozenset({"en"}))
        cursor, image_urls = CursorStore(tmp_path / "c.json"), server.url + "/img/feed_fullsize/plain/"
        async with running(topics, jetstream, cursor, post_filter=post_filter) as runner:
            await eventually(lambda: server.connections >= 1, what="a subscription")
            server.release_all()
            await eventually(lambda: (cursor.load() or {}).get("time_us") == last_sent(events), what="every event")
    summary = runner.summary
    assert summary.malformed == 2 and summary.posts > 0 and summary.filtered > 0
    messages = await read_topic(topics, topics.kafka.posts_topic, lambda m: len(m) >= summary.posts, quiet_s=0.5)
    kept = [Post.model_validate_json(m.value) for m in messages]
    assert len(kept) == summary.posts
    assert all(p.lang == "en" and "acme" in p.keywords for p in kept)
    assert any(p.image_url and str(p.image_url).startswith(image_urls) for p in kept)
    letters = await read_topic(topics, topics.kafka.dlq_topic, lambda m: len(m) >= 2, quiet_s=0.5)
    assert {DeadLetter.model_validate_json(m.value).topic for m in letters} == {"source:bluesky"}


async def test_a_connector_killed_with_sigkill_resumes_from_its_cursor_without_a_gap(stack, settings, tmp_path):
    topics = await private_topics(settings)
    events = sample_events(20_000, seed=5)
    posts, deleted = expected(events)
    state = tmp_path / "state"
    cursor = CursorStore(state / "bluesky.json")
    async with JetstreamReplayServer(events) as server:
        env = {**os.environ, **stack.env(), "LOG_LEVEL": "WARNING", "METRICS_PORT": "0",
               "POSTS_TOPIC": topics.kafka.posts_topic, "DLQ_TOPIC": topics.kafka.dlq_topic,
               "DELETIONS_TOPIC": topics.kafka.deletions_topic, "INGEST_STATE_DIR": str(state),
               "INGEST_CURSOR_FLUSH_S": "0.05", "INGEST_MAX_IN_FLIGHT": "500", "INGEST_BACKOFF_MAX_S": "0.2"}
        command = [sys.executable, "-m", "monitor", "ingest", "bluesky", "--url", server.ws_url,
                   "--image-cdn", server.url]
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            await eventually(lambda: server.connections >= 1 or first.poll() is not None, what="a subscription")
            assert first.poll() is None, first.communicate()[1]
            server.release_all()
            await eventually(lambda: (cursor.load() or {}).get("time_us", 0) >= events[2000]["time_us"],
                             what="progress")
            first.send_signal(signal.SIGKILL)
        finally:
            first.wait()
        killed_at = cursor.load()["time_us"]
        assert killed_at < last_sent(events), "the connector finished before the kill: use more events"

        second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            await eventually(lambda: (cursor.load() or {}).get("time_us") == last_sent(events)
                             or second.poll() is not None, what="the rest", timeout_s=120)
            assert second.poll() is None, second.communicate()[1]
            second.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(second.wait, 30) == 0
        finally:
            if second.poll() is None:
                second.kill()
        assert server.cursors == [None, killed_at]  # live first, then resumed exactly at the saved cursor
    assert set(await keys(topics, topics.kafka.posts_topic, posts, timeout_s=120)) == posts
    assert set(await keys(topics, topics.kafka.deletions_topic, deleted)) == deleted
    for message in (await read_topic(topics, topics.kafka.deletions_topic, lambda m: len(m) >= len(deleted)))[:5]:
        assert PostDeletion.model_validate_json(message.value).source == "bluesky"
