"""A 10,000-event Jetstream replay end to end: `monitor ingest bluesky` -> posts -> worker -> sentiment -> sink ->
PostgreSQL, with the connector killed (SIGKILL) mid-stream and restarted from its cursor.

Every created post is stored exactly once (what the restart sent again is deduplicated); every deletion is applied
(a deleted post is marked, or never stored when its deletion overtook it); and each trend bucket, at every
granularity, holds exactly the stored, supported, undeleted posts that fall in it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter

import pytest
from sqlalchemy import func, select

from connectors.bluesky import POST_COLLECTION
from connectors.cursor import CursorStore
from core.process import ChildProcess
from monitor.devstack.sources import JetstreamReplayServer, sample_events
from monitor.store.db import GRANULARITIES, NOT_DELETED, post_deletion, post_sentiment, trend_bucket
from tests.integration.ingest_helpers import eventually, private_topics

pytestmark = pytest.mark.integration

EVENTS = 10_000


async def test_a_jetstream_replay_lands_in_the_trends_exactly_once(stack, settings, engine, tmp_path):
    run = uuid.uuid4().hex[:8]
    brand = f"bsky-{run}"
    topics = await private_topics(settings)
    topics = topics.replace(sentiment_topic=f"ingest-sentiment-{run}")
    events = sample_events(EVENTS, seed=9, image_share=0.02)
    created, deleted = set(), set()
    for event in events:
        commit = event.get("commit") or {}
        if event.get("kind") == "commit" and commit.get("collection") == POST_COLLECTION:
            uri = f"at://{event['did']}/{POST_COLLECTION}/{commit['rkey']}"
            (deleted if commit["operation"] == "delete" else created).add(uri)
    assert deleted and deleted <= created

    env = {**stack.env(), "MODEL_CHECKPOINT": "untrained", "WORKER_OCR": "false", "WORKER_IMAGE_PRIVATE_HOSTS": "true",
           "TOPIC_PARTITIONS": "4", "WORKER_MAX_BATCH": "64", "SINK_MAX_BATCH": "256",
           "POSTS_TOPIC": topics.kafka.posts_topic, "SENTIMENT_TOPIC": topics.kafka.sentiment_topic,
           "DLQ_TOPIC": topics.kafka.dlq_topic, "DELETIONS_TOPIC": topics.kafka.deletions_topic,
           "WORKER_GROUP": f"worker-{run}", "SINK_GROUP": f"sink-{run}",
           # the sample stream is dated January 2026: retention must not prune it mid-test
           "RETENTION_POSTS_DAYS": "0", "RETENTION_MINUTE_BUCKETS_DAYS": "0"}
    children = [ChildProcess.monitor(role, env, tmp_path / f"{role}.log").start() for role in ("worker", "sink")]
    ours = post_sentiment.c.post_id.in_(created)
    kept = created - deleted

    async def progress() -> tuple[int, int, int]:
        """(kept posts stored, deletions recorded, deleted posts still counted): done at (len(kept), len(deleted), 0).
        A deleted post is stored and then marked, or never stored when its deletion came first."""
        async with engine.connect() as conn:
            stored = await conn.scalar(select(func.count()).where(post_sentiment.c.post_id.in_(kept)))
            recorded = await conn.scalar(select(func.count()).where(post_deletion.c.post_id.in_(deleted)))
            counted = await conn.scalar(select(func.count()).where(post_sentiment.c.post_id.in_(deleted), NOT_DELETED))
        return stored, recorded, counted

    state = tmp_path / "state"
    cursor = CursorStore(state / "bluesky.json")
    try:
        async with JetstreamReplayServer(events) as server:
            connector_env = {**os.environ, **env, "LOG_LEVEL": "WARNING", "METRICS_PORT": "0",
                             "INGEST_STATE_DIR": str(state), "INGEST_CURSOR_FLUSH_S": "0.05",
                             "INGEST_MAX_IN_FLIGHT": "200", "INGEST_BACKOFF_MAX_S": "0.2"}
            command = [sys.executable, "-m", "monitor", "ingest", "bluesky", "--url", server.ws_url,
                       "--image-cdn", server.url, "--brand", brand]
            first = subprocess.Popen(command, env=connector_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                await eventually(lambda: server.connections >= 1 or first.poll() is not None, what="a subscription")
                assert first.poll() is None, first.communicate()[1]
                server.release_all()
                await eventually(lambda: (cursor.load() or {}).get("time_us", 0) >= events[EVENTS // 3]["time_us"],
                                 what="a third of the stream")
                first.send_signal(signal.SIGKILL)
            finally:
                first.wait()
            second = subprocess.Popen(command, env=connector_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            try:
                async def all_stored() -> bool:
                    for child in children:
                        child.check_alive()
                    assert second.poll() is None, second.communicate()[1]
                    return await progress() == (len(kept), len(deleted), 0)

                await eventually(all_stored, timeout_s=600, what="every post stored and every deletion applied")
            finally:
                second.terminate()
                second.wait(30)
            assert server.cursors[0] is None and server.cursors[1] is not None  # the restart resumed, not live
    finally:
        for child in reversed(children):
            child.stop()

    async with engine.connect() as conn:
        rows = (await conn.execute(select(post_sentiment.c.created_at, post_sentiment.c.label,
                                          post_sentiment.c.language_supported, post_sentiment.c.deleted_at)
                                   .where(ours))).all()
        buckets = (await conn.execute(select(trend_bucket).where(trend_bucket.c.brand == brand))).mappings().all()
    counted = [r for r in rows if r.language_supported and r.deleted_at is None]
    assert len([r for r in rows if r.deleted_at is None]) == len(kept) and counted
    for granularity in GRANULARITIES:
        expected = Counter()
        for r in counted:
            start = r.created_at.replace(second=0, microsecond=0)
            if granularity in ("hour", "day"):
                start = start.replace(minute=0)
            if granularity == "day":
                start = start.replace(hour=0)
            expected[(start, r.label)] += 1
        actual = Counter()
        for b in buckets:  # the default figures: supported languages' rows (unsupported ones are counted apart)
            if b["granularity"] == granularity and b["language_supported"]:
                for label in ("negative", "neutral", "positive"):
                    if b[label]:
                        actual[(b["bucket_start"], label)] += b[label]
        assert actual == expected, granularity
