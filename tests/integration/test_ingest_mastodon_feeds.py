"""The Mastodon and feed connectors against local servers that speak their protocols (monitor/devstack/sources):
live statuses plus REST catch-up with no gap after a drop or a restart, rate limits waited out, tokens required;
feeds polled with conditional GET, new entries only, Retry-After honoured, unreadable feeds dead-lettered."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from connectors.backoff import Backoff
from connectors.cursor import CursorStore
from connectors.feeds import FeedSource
from connectors.mastodon import MastodonSource
from connectors.source import SourceRefused
from monitor.devstack.sources import FeedItem, FeedServer, MastodonReplayServer, atom_document, rss_document
from monitor.devstack.sources.mastodon import sample_items
from schemas import DeadLetter, Post
from tests.integration.ingest_helpers import eventually, private_topics, running
from tests.integration.kafka_helpers import read_topic

pytestmark = pytest.mark.integration

START = datetime(2026, 2, 1, tzinfo=UTC)


def segments(*sizes: int, deletes: tuple[bool, ...]) -> list[list]:
    """Consecutive runs of sample items, ids increasing across runs; a run without deletes can be missed live and
    recovered completely from the timeline (Mastodon's REST API does not list deletes)."""
    runs, start = [], START
    for seed, (size, with_deletes) in enumerate(zip(sizes, deletes, strict=True)):
        run = sample_items(size, seed=seed, start=start, delete_share=0.03 if with_deletes else 0.0)
        runs.append(run)
        start = datetime.fromisoformat(next(p for k, p in reversed(run) if k == "update")["created_at"]) + \
            timedelta(seconds=1)
    return runs


def ids(items: list) -> tuple[set[str], set[str]]:
    updates = {p["id"] for kind, p in items if kind == "update"}
    deletes = {p for kind, p in items if kind == "delete"}
    return updates, deletes


async def published_ids(settings, topic: str, wanted: set[str], source: MastodonSource) -> set[str]:
    keys = {source.post_id(i) for i in wanted}
    messages = await read_topic(settings, topic, lambda m: keys <= {x.key.decode() for x in m}, timeout_s=90)
    return {m.key.decode() for m in messages}


async def test_mastodon_stream_drop_and_restart_leave_no_gap(settings, tmp_path):
    topics = await private_topics(settings)
    live, missed, after_restart = segments(150, 150, 100, deletes=(True, False, False))
    cursor = CursorStore(tmp_path / "mastodon.json")
    async with MastodonReplayServer(live + missed + after_restart, rate_limit=3, rate_window_s=1.0) as server:
        mastodon = MastodonSource(server.url, backoff=Backoff(0.05, 0.2))
        async with running(topics, mastodon, cursor) as runner:
            await eventually(lambda: server.connections >= 1, what="a stream")
            server.release(len(live))
            await eventually(lambda: runner.summary.posts + runner.summary.deletions >= len(live), what="live items")
            await server.drop_all()
            server.release(len(missed))  # while the connector is disconnected
            await eventually(lambda: runner.summary.posts >= len(ids(live)[0]) + len(missed), what="the catch-up")
        assert server.connections == 2
        assert any("min_id" in query for query in server.rest_requests)
        server.release(len(after_restart))  # while the connector is stopped
        async with running(topics, mastodon, cursor) as runner:
            await eventually(lambda: runner.summary.posts >= len(after_restart), what="catch-up after a restart")
    updates, deletes = ids(live + missed + after_restart)
    assert await published_ids(topics, topics.kafka.posts_topic, updates, mastodon) == \
        {mastodon.post_id(i) for i in updates}
    assert await published_ids(topics, topics.kafka.deletions_topic, deletes, mastodon) == \
        {mastodon.post_id(i) for i in deletes}
    assert cursor.load() == {"last_id": max(updates, key=lambda i: (len(i), i))}
    assert server.rest_requests, "rate limited requests were retried"


async def test_mastodon_without_the_required_token_stops_with_the_reason(settings, tmp_path):
    topics = await private_topics(settings)
    async with MastodonReplayServer([], access_token="s3cret") as server:
        refused = MastodonSource(server.url, backoff=Backoff(0.05, 0.1))
        with pytest.raises(SourceRefused, match="access token"):
            async with running(topics, refused, CursorStore(tmp_path / "m.json")):
                await asyncio.sleep(5)
        allowed = MastodonSource(server.url, access_token="s3cret", backoff=Backoff(0.05, 0.1))
        async with running(topics, allowed, CursorStore(tmp_path / "m.json")):
            await eventually(lambda: server.connections >= 1, what="an authorised stream")


def items(count: int, prefix: str, start: int = 0) -> list[FeedItem]:
    return [FeedItem(guid=f"https://news.test/{prefix}/{i}", title=f"Acme story {i}", link=f"https://news.test/{i}",
                     summary=f"<p>Acme did <b>thing</b> {i}</p>", published=START + timedelta(minutes=i))
            for i in range(start, start + count)]


async def test_feeds_publish_new_entries_once_with_conditional_get(settings, tmp_path):
    topics = await private_topics(settings)
    rss, atom = items(30, "rss"), items(20, "atom")
    cursor = CursorStore(tmp_path / "feeds.json")
    async with FeedServer({"/rss.xml": rss_document(rss, title="News", link="https://news.test"),
                           "/atom.xml": atom_document(atom, title="Blog", link="https://blog.test")}) as server:
        urls = [server.feed_url("/rss.xml"), server.feed_url("/atom.xml")]
        feeds = FeedSource(urls, interval_s=0.2, backoff=Backoff(0.05, 0.1))
        async with running(topics, feeds, cursor) as runner:
            await eventually(lambda: runner.summary.posts >= 50, what="both feeds")
            await eventually(lambda: any(r.status == 304 for r in server.requests), what="a 304")
            server.set_feed("/rss.xml", rss_document(items(35, "rss"), title="News", link="https://news.test"))
            await eventually(lambda: runner.summary.posts >= 55, what="the five new entries")
            server.fail_next("/atom.xml", status=503, retry_after=1)
            failed_at = len(server.requests)
            await eventually(lambda: any(r.status == 503 for r in server.requests[failed_at:]), what="the 503")
            await asyncio.sleep(0.6)
            assert not [r for r in server.requests[failed_at:] if r.path == "/atom.xml" and r.status != 503]
        assert runner.summary.posts == 55
        async with running(topics, feeds, cursor) as restarted:
            await eventually(lambda: len(server.requests) >= failed_at + 6, what="polls after a restart")
        assert restarted.summary.posts == 0  # a restart remembers validators and seen entries
    messages = await read_topic(topics, topics.kafka.posts_topic, lambda m: len(m) >= 55, quiet_s=0.5)
    posts = [Post.model_validate_json(m.value) for m in messages]
    assert len({p.post_id for p in posts}) == len(posts) == 55
    first = next(p for p in posts if p.post_id == "https://news.test/rss/0")
    assert first.text == "Acme story 0\nAcme did thing 0" and first.created_at == START and first.source == "rss"


async def test_an_unreadable_feed_is_dead_lettered_and_polling_goes_on(settings, tmp_path):
    topics = await private_topics(settings)
    async with FeedServer({"/bad.xml": b"\x00\x01 this is not a feed", "/ok.xml": rss_document(
            items(3, "ok"), title="OK", link="https://ok.test")}) as server:
        feeds = FeedSource([server.feed_url("/bad.xml"), server.feed_url("/ok.xml")], interval_s=0.2)
        async with running(topics, feeds, CursorStore(tmp_path / "f.json")) as runner:
            await eventually(lambda: runner.summary.posts >= 3 and runner.summary.malformed >= 1, what="both feeds")
    [letter, *_] = await read_topic(topics, topics.kafka.dlq_topic, lambda m: len(m) >= 1)
    assert DeadLetter.model_validate_json(letter.value).code == "malformed_source_event"
