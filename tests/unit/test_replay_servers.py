"""The local source servers keep the documented promises the connectors rely on: Jetstream cursors and filters,
Mastodon's SSE framing, live-only streams, timeline paging, auth and rate limits, and feeds' conditional GETs."""

from __future__ import annotations

import asyncio
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from PIL import Image

from monitor.devstack.sources import (
    FeedItem,
    FeedServer,
    JetstreamReplayServer,
    MastodonReplayServer,
    atom_document,
    identity_event,
    post_event,
    rss_document,
    sample_events,
    sample_items,
    status,
)
from monitor.devstack.sources.jetstream import blob_ref, commit_event, tid

A, B = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"
T0 = 1_767_225_600_000_000


def _posts(count: int) -> list[dict[str, Any]]:
    return [post_event(A, tid(T0 + i * 1000), T0 + i * 1000, f"post {i} about acme") for i in range(count)]


async def _receive(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[dict[str, Any]]:
    return [await asyncio.wait_for(ws.receive_json(), 5) for _ in range(count)]


async def _nothing_more(ws: aiohttp.ClientWebSocketResponse) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(ws.receive(), 0.2)


# --- Jetstream ---------------------------------------------------------------------------------------------------

async def test_jetstream_cursor_replays_from_that_time_then_tails_live():
    events = _posts(10)
    async with JetstreamReplayServer(events) as server, aiohttp.ClientSession() as session:
        server.release(6)
        cursor = events[3]["time_us"]
        async with session.ws_connect(f"{server.ws_url}?cursor={cursor}") as ws:
            assert [e["time_us"] for e in await _receive(ws, 3)] == [e["time_us"] for e in events[3:6]]
            await _nothing_more(ws)
            server.release(2)
            assert await _receive(ws, 2) == events[6:8]
        assert server.cursors == [cursor] and server.connections == 1


async def test_jetstream_without_cursor_is_live_tail_only():
    events = _posts(8)
    async with JetstreamReplayServer(events) as server, aiohttp.ClientSession() as session:
        server.release(5)
        async with session.ws_connect(server.ws_url) as ws:
            await _nothing_more(ws)
            server.release(1)
            assert await _receive(ws, 1) == [events[5]]
        async with session.ws_connect(f"{server.ws_url}?cursor={T0 * 2}") as ws:  # a future cursor is live too
            server.release(1)
            assert await _receive(ws, 1) == [events[6]]
        assert server.cursors == [None, T0 * 2]


async def test_jetstream_event_shape():
    event = post_event(A, "3kabc", T0, "hi #acme", langs=("de",), image_cids=["bafkreiexample"], reply=True)
    assert set(event) == {"did", "time_us", "kind", "commit"} and event["kind"] == "commit"
    commit = event["commit"]
    assert {"rev", "operation", "collection", "rkey", "record", "cid"} <= set(commit)
    record = commit["record"]
    assert record["$type"] == "app.bsky.feed.post" and record["langs"] == ["de"] and "root" in record["reply"]
    assert record["embed"]["$type"] == "app.bsky.embed.images"
    assert record["embed"]["images"][0]["image"] == blob_ref("bafkreiexample")
    assert record["facets"][0]["index"] == {"byteStart": 3, "byteEnd": 8}
    deleted = commit_event(A, "app.bsky.feed.post", "3kabc", T0 + 1, None, operation="delete")["commit"]
    assert "record" not in deleted and "cid" not in deleted


async def test_jetstream_collection_wildcards_dids_and_identity_bypass():
    like = commit_event(A, "app.bsky.feed.like", "l1", T0 + 2, {"$type": "app.bsky.feed.like"})
    follow = commit_event(A, "app.bsky.graph.follow", "f1", T0 + 3, {"$type": "app.bsky.graph.follow"})
    post_a, post_b = post_event(A, "p1", T0 + 1, "a"), post_event(B, "p2", T0 + 4, "b")
    identity_b = identity_event(B, T0 + 5, handle="b.test")
    events = [post_a, like, follow, post_b, identity_b]
    async with JetstreamReplayServer(events) as server, aiohttp.ClientSession() as session:
        server.release_all()
        query = f"cursor=0&wantedCollections=app.bsky.feed.*&wantedDids={A}"
        async with session.ws_connect(f"{server.ws_url}?{query}") as ws:
            assert await _receive(ws, 2) == [post_a, like]
            await _nothing_more(ws)
        async with session.ws_connect(f"{server.ws_url}?cursor=0&wantedCollections=app.bsky.feed.post") as ws:
            assert await _receive(ws, 3) == [post_a, post_b, identity_b]  # identity ignores the collection filter
            await _nothing_more(ws)
        async with session.get(f"{server.url}/subscribe?cursor=soon") as response:
            assert response.status == 400


async def test_jetstream_closes_after_events_per_connection_and_resumes_with_cursor():
    events = _posts(7)
    async with JetstreamReplayServer(events, events_per_connection=3) as server, aiohttp.ClientSession() as session:
        server.release_all()
        seen: list[dict[str, Any]] = []
        cursor = 0
        while len(seen) < len(events):
            async with session.ws_connect(f"{server.ws_url}?cursor={cursor}") as ws:
                async for message in ws:  # the server ends the iteration after 3 events
                    seen.append(json.loads(message.data))
                    if len(seen) == len(events):
                        break  # the last connection stays open, tailing live
            assert ws.close_code == aiohttp.WSCloseCode.GOING_AWAY or len(seen) == len(events)
            cursor = seen[-1]["time_us"] + 1
        assert seen == events and server.connections == 3
        assert server.cursors == [0, events[2]["time_us"] + 1, events[5]["time_us"] + 1]


async def test_jetstream_drop_all_cuts_open_connections():
    async with JetstreamReplayServer(_posts(3)) as server, aiohttp.ClientSession() as session, \
            session.ws_connect(server.ws_url) as ws:
        await asyncio.sleep(0.05)
        assert await server.drop_all() == 1
        message = await asyncio.wait_for(ws.receive(), 5)
        assert message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE)


async def test_jetstream_blob_cdn_serves_a_jpeg_of_the_declared_size():
    async with JetstreamReplayServer([]) as server, aiohttp.ClientSession() as session:
        url = f"{server.url}/img/feed_fullsize/plain/{A}/bafkreiexample@jpeg"
        async with session.get(url) as response:
            assert response.status == 200 and response.content_type == "image/jpeg"
            body = await response.read()
        assert Image.open(io.BytesIO(body)).format == "JPEG"
        assert len(body) == blob_ref("bafkreiexample")["size"] and server.blob_requests == ["bafkreiexample"]


def test_sample_events_are_a_realistic_repeatable_mix():
    events = sample_events(400, seed=3)
    assert events == sample_events(400, seed=3) and len(events) == 400
    assert all(a["time_us"] < b["time_us"] for a, b in zip(events, events[1:], strict=False))
    commits = [e["commit"] for e in events if e["kind"] == "commit"]
    collections = {c["collection"] for c in commits}
    assert {"app.bsky.feed.post", "app.bsky.feed.like"} <= collections
    created = {(e["did"], e["commit"]["rkey"]) for e in events if e["kind"] == "commit"
               and e["commit"]["operation"] == "create"}
    deletes = [(e["did"], e["commit"]["rkey"]) for e in events if e["kind"] == "commit"
               and e["commit"]["operation"] == "delete"]
    assert deletes and set(deletes) <= created
    posts = [c["record"] for c in commits if c["operation"] == "create" and c["collection"] == "app.bsky.feed.post"]
    assert any("embed" in p for p in posts) and any(p["langs"] != ["en"] for p in posts)
    assert any("#acme" in p["text"] for p in posts)


# --- Mastodon ----------------------------------------------------------------------------------------------------

def _statuses(count: int, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for i in range(count):
        moment = start + timedelta(seconds=i)
        tags = ["acme"] if i % 2 == 0 else []
        items.append(("update", status(str(100_000 + i), f"status {i}", created_at=moment, tags=tags)))
    return items


async def _sse_events(response: aiohttp.ClientResponse, count: int) -> list[tuple[str, str]]:
    """The next `count` (event, data) pairs, skipping comment lines."""
    events: list[tuple[str, str]] = []
    name = None
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), 5)).decode().rstrip("\n")
        if line.startswith(":") or not line:
            continue
        field, _, value = line.partition(": ")
        if field == "event":
            name = value
        elif field == "data":
            assert name is not None
            events.append((name, value))
            name = None
    return events


async def test_mastodon_stream_is_live_only_with_documented_framing():
    items = [*_statuses(4), ("delete", "100001")]
    async with MastodonReplayServer(items) as server, aiohttp.ClientSession() as session:
        server.release(2)
        async with session.get(f"{server.url}/api/v1/streaming/public") as response:
            assert response.status == 200 and response.content_type == "text/event-stream"
            assert await asyncio.wait_for(response.content.readline(), 5) == b":thump\n"
            server.release_all()
            events = await _sse_events(response, 3)
        assert [name for name, _ in events] == ["update", "update", "delete"]
        assert [json.loads(data)["id"] for _, data in events[:2]] == ["100002", "100003"]
        assert events[2][1] == "100001"
        async with session.get(f"{server.url}/api/v1/streaming/health") as response:
            assert await response.text() == "OK"


async def test_mastodon_hashtag_stream_and_heartbeats():
    async with MastodonReplayServer(_statuses(6), heartbeat_s=0.05) as server, aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/api/v1/streaming?stream=hashtag&tag=ACME") as response:
            assert await asyncio.wait_for(response.content.readline(), 5) == b":thump\n"
            assert await asyncio.wait_for(response.content.readline(), 5) == b":thump\n"  # a heartbeat
            server.release_all()
            events = await _sse_events(response, 3)
        assert [json.loads(data)["id"] for _, data in events] == ["100000", "100002", "100004"]
        async with session.get(f"{server.url}/api/v1/streaming/hashtag") as response:
            assert response.status == 400  # tag is required
        async with session.get(f"{server.url}/api/v1/streaming/nope") as response:
            assert response.status == 400 and (await response.json())["error"] == "Unknown channel requested"


async def test_mastodon_stream_ends_after_events_per_connection():
    async with MastodonReplayServer(_statuses(5), events_per_connection=2) as server, \
            aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/api/v1/streaming/public/local") as response:
            server.release_all()
            assert len(await _sse_events(response, 2)) == 2
            rest = await asyncio.wait_for(response.content.read(), 5)
        assert b"event:" not in rest and server.connections == 1


def _link(response: aiohttp.ClientResponse, rel: str) -> dict[str, list[str]] | None:
    for part in response.headers.get("Link", "").split(","):
        if f'rel="{rel}"' in part:
            return parse_qs(urlsplit(part.split(";")[0].strip().strip("<>")).query)
    return None


async def test_mastodon_timeline_paging_with_max_since_and_min_id():
    items = [*_statuses(30), ("delete", "100025")]
    async with MastodonReplayServer(items) as server, aiohttp.ClientSession() as session:
        server.release_all()
        base = f"{server.url}/api/v1/timelines/public"

        async def page(**params: Any) -> tuple[list[str], aiohttp.ClientResponse]:
            async with session.get(base, params={k: str(v) for k, v in params.items()}) as response:
                assert response.status == 200
                return [s["id"] for s in await response.json()], response

        ids, response = await page(limit=10)
        expected = [str(100_000 + i) for i in range(29, -1, -1) if i != 25]  # newest first, the deleted one gone
        assert ids == expected[:10]
        assert _link(response, "next") == {"limit": ["10"], "max_id": [ids[-1]]}
        assert _link(response, "prev") == {"limit": ["10"], "min_id": [ids[0]]}
        ids, _ = await page(limit=10, max_id=ids[-1])
        assert ids == expected[10:20]
        ids, _ = await page(limit=5, min_id="100003")  # the page right after min_id, still newest first
        assert ids == ["100008", "100007", "100006", "100005", "100004"]
        ids, _ = await page(limit=5, since_id="100003")  # the newest five newer than since_id
        assert ids == expected[:5]
        ids, response = await page(min_id="100029")
        assert ids == [] and "Link" not in response.headers
        ids, _ = await page(limit=100)
        assert len(ids) == 29  # limit is capped at 40; 29 visible statuses
        async with session.get(f"{server.url}/api/v1/timelines/tag/acme", params={"limit": "3"}) as response:
            assert [s["id"] for s in await response.json()] == ["100028", "100026", "100024"]
        assert server.rest_requests[0] == {"limit": "10"}


async def test_mastodon_requires_the_access_token_when_set():
    async with MastodonReplayServer(_statuses(2), access_token="s3cret") as server, \
            aiohttp.ClientSession() as session:
        server.release_all()
        url = f"{server.url}/api/v1/timelines/public"
        async with session.get(url) as response:
            assert response.status == 401 and "error" in await response.json()
        async with session.get(url, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        async with session.get(url, headers={"Authorization": "Bearer s3cret"}) as response:
            assert response.status == 200 and len(await response.json()) == 2
        async with session.get(f"{server.url}/api/v1/streaming/public") as response:
            assert response.status == 401
        async with session.get(f"{server.url}/api/v1/streaming/public?access_token=s3cret") as response:
            assert response.status == 200
        async with session.get(f"{server.url}/api/v1/streaming/health") as response:
            assert response.status == 200


async def test_mastodon_rate_limit_headers_and_429():
    async with MastodonReplayServer(_statuses(1), rate_limit=3) as server, aiohttp.ClientSession() as session:
        url = f"{server.url}/api/v1/timelines/public"
        remaining = []
        for _ in range(3):
            async with session.get(url) as response:
                assert response.status == 200 and response.headers["X-RateLimit-Limit"] == "3"
                remaining.append(response.headers["X-RateLimit-Remaining"])
        assert remaining == ["2", "1", "0"]
        async with session.get(url) as response:
            assert response.status == 429 and response.headers["X-RateLimit-Remaining"] == "0"
            reset = datetime.fromisoformat(response.headers["X-RateLimit-Reset"].replace("Z", "+00:00"))
        assert timedelta(0) < reset - datetime.now(UTC) <= timedelta(seconds=300)


def test_sample_items_mix_updates_and_deletes_of_earlier_statuses():
    items = sample_items(300, seed=2)
    updates = [payload for kind, payload in items if kind == "update"]
    deletes = [payload for kind, payload in items if kind == "delete"]
    ids = [int(s["id"]) for s in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert deletes and set(deletes) <= {s["id"] for s in updates}
    assert any(s["media_attachments"] for s in updates) and any("@" in s["account"]["acct"] for s in updates)
    tagged = next(s for s in updates if s["tags"])
    assert 'class="mention hashtag"' in tagged["content"] and tagged["content"].startswith("<p>")


# --- RSS / Atom --------------------------------------------------------------------------------------------------

async def test_feed_conditional_get_with_etag_and_last_modified():
    async with FeedServer({"/acme.rss": "<rss version='2.0'><channel/></rss>"}) as server, \
            aiohttp.ClientSession() as session:
        url = server.feed_url("/acme.rss")
        async with session.get(url) as response:
            assert response.status == 200 and response.content_type == "application/rss+xml"
            etag, last_modified = response.headers["ETag"], response.headers["Last-Modified"]
        assert etag.startswith('"') and not etag.startswith("W/")
        async with session.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304 and response.headers["ETag"] == etag and await response.read() == b""
        async with session.get(url, headers={"If-None-Match": f'"other", W/{etag}'}) as response:
            assert response.status == 304  # a list, and weak comparison
        async with session.get(url, headers={"If-Modified-Since": last_modified}) as response:
            assert response.status == 304
        earlier = format_datetime(datetime.now(UTC) - timedelta(days=1), usegmt=True)
        async with session.get(url, headers={"If-Modified-Since": earlier}) as response:
            assert response.status == 200
        async with session.get(url, headers={"If-None-Match": '"stale"', "If-Modified-Since": last_modified}) as r:
            assert r.status == 200  # If-None-Match decides when present

        server.set_feed("/acme.rss", "<rss version='2.0'><channel><title>new</title></channel></rss>")
        async with session.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 200 and response.headers["ETag"] != etag
            new_etag = response.headers["ETag"]
        async with session.get(url, headers={"If-Modified-Since": last_modified}) as response:
            assert response.status == 200  # Last-Modified moved past the old date
        async with session.get(url, headers={"If-None-Match": new_etag}) as response:
            assert response.status == 304
        assert [r.status for r in server.requests] == [200, 304, 304, 304, 200, 200, 200, 200, 304]
        assert server.requests[1].if_none_match == etag


async def test_feed_fail_next_with_retry_after_then_recovers():
    async with FeedServer({"feed.xml": b"<rss/>"}) as server, aiohttp.ClientSession() as session:
        server.fail_next("/feed.xml", status=503, retry_after=7)
        server.fail_next("/feed.xml", status=429)
        async with session.get(server.feed_url("feed.xml")) as response:
            assert response.status == 503 and response.headers["Retry-After"] == "7"
        async with session.get(server.feed_url("feed.xml")) as response:
            assert response.status == 429 and "Retry-After" not in response.headers
        async with session.get(server.feed_url("feed.xml")) as response:
            assert response.status == 200
        async with session.get(f"{server.url}/missing.xml") as response:
            assert response.status == 404


async def test_rss_and_atom_documents_with_images_served_locally():
    async with FeedServer({}) as server, aiohttp.ClientSession() as session:
        published = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        items = [FeedItem("post-1", "Acme & co", "https://news.test/1", "Acme <b>rocks</b>", published,
                          server.image_url("one.jpg")),
                 FeedItem("https://news.test/2", "Two", "https://news.test/2", "second", published)]
        server.set_feed("/rss", rss_document(items, title="News", link="https://news.test"))
        server.set_feed("/atom", atom_document(items, title="News", link="https://news.test"))

        async with session.get(server.feed_url("/rss")) as response:
            rss = ET.fromstring(await response.read())
        first = rss.find("channel/item")
        assert first is not None and first.findtext("guid") == "post-1" and first.findtext("title") == "Acme & co"
        assert first.findtext("pubDate") == "Fri, 02 Jan 2026 03:04:05 +0000"
        enclosure = first.find("enclosure")
        assert enclosure is not None and enclosure.get("type") == "image/jpeg"

        async with session.get(server.feed_url("/atom")) as response:
            assert response.content_type == "application/atom+xml"
            atom = ET.fromstring(await response.read())
        ns = {"a": "http://www.w3.org/2005/Atom"}
        entries = atom.findall("a:entry", ns)
        assert [e.findtext("a:published", namespaces=ns) for e in entries] == ["2026-01-02T03:04:05Z"] * 2
        assert entries[1].findtext("a:id", namespaces=ns) == "https://news.test/2"
        assert entries[0].find("a:link[@rel='enclosure']", ns) is not None

        async with session.get(enclosure.get("url")) as response:
            assert response.status == 200
            assert Image.open(io.BytesIO(await response.read())).format == "JPEG"
        assert server.image_requests == ["one.jpg"]


async def test_mastodon_drop_all_cuts_the_stream():
    async with MastodonReplayServer(_statuses(1)) as server, aiohttp.ClientSession() as session, \
            session.get(f"{server.url}/api/v1/streaming/public") as response:
        assert await asyncio.wait_for(response.content.readline(), 5) == b":thump\n"
        assert await server.drop_all() == 1
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(response.content.read(), 5)
