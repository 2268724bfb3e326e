"""A local Bluesky Jetstream (v1 `/subscribe` wire) that replays a fixed list of events.

Written from Jetstream's public documentation (README of github.com/bluesky-social/jetstream, v1 `/subscribe`):
JSON text frames of kind `commit` / `identity` / `account`; `wantedCollections` (exact NSIDs or `prefix.*`
wildcards, repeatable) and `wantedDids` (repeatable) filters, with identity and account events bypassing the
collection filter; a `cursor` in unix microseconds that replays from that time and then tails live, and no cursor
(or a future one) meaning live tail only. Also a Bluesky-CDN-shaped blob route so image fetchers get real JPEGs.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import random
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from core.logging import get_logger
from monitor.devstack.sources._base import OTHER_LANGS, TEXTS, ReplayServer, sample_jpeg

log = get_logger(__name__)

POST = "app.bsky.feed.post"
MAX_WANTED_COLLECTIONS = 100  # Jetstream's documented caps
MAX_WANTED_DIDS = 10_000
START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z: sample data is dated, not "now", so tests are repeatable

_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_HASHTAG = re.compile(r"#(\w+)")


def tid(time_us: int, clock_id: int = 0) -> str:
    """An atproto TID (13 base32-sortable chars: microseconds then a 10-bit clock id), as rkeys and revs are."""
    value = ((time_us & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    return "".join(_TID_ALPHABET[(value >> shift) & 31] for shift in range(60, -1, -5))


def cid_for(data: bytes, *, raw: bool = False) -> str:
    """A CIDv1 string (sha2-256; dag-cbor `bafyrei…` for records, raw `bafkrei…` for blobs) over `data`."""
    prefix = bytes([0x01, 0x55 if raw else 0x71, 0x12, 0x20])
    return "b" + base64.b32encode(prefix + hashlib.sha256(data).digest()).decode().lower().rstrip("=")


def _iso_us(time_us: int) -> str:
    """atproto datetime (millisecond precision, `Z`) of a unix-microseconds time."""
    moment = datetime.fromtimestamp(time_us / 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def blob_ref(cid: str) -> dict[str, Any]:
    """The blob object a record embeds for an image, sized like the JPEG the CDN route serves for it."""
    return {"$type": "blob", "ref": {"$link": cid}, "mimeType": "image/jpeg", "size": len(sample_jpeg(cid))}


def commit_event(did: str, collection: str, rkey: str, time_us: int, record: dict[str, Any] | None, *,
                 operation: str = "create") -> dict[str, Any]:
    """One Jetstream commit event; deletes carry neither record nor cid, as on the real wire."""
    commit: dict[str, Any] = {"rev": tid(time_us, 1), "operation": operation, "collection": collection, "rkey": rkey}
    if operation != "delete":
        commit["record"] = record or {}
        commit["cid"] = cid_for(json.dumps(record, sort_keys=True).encode())
    return {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}


def _tag_facets(text: str) -> list[dict[str, Any]]:
    """Richtext facets for #hashtags: byte offsets into the UTF-8 text, as app.bsky.richtext.facet defines them."""
    facets = []
    for match in _HASHTAG.finditer(text):
        start = len(text[:match.start()].encode())
        facets.append({"index": {"byteStart": start, "byteEnd": start + len(match.group(0).encode())},
                       "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": match.group(1)}]})
    return facets


def post_event(did: str, rkey: str, time_us: int, text: str, *, langs: Sequence[str] = ("en",),
               created_at: str | None = None, image_cids: Sequence[str] = (), reply: bool = False) -> dict[str, Any]:
    """An `app.bsky.feed.post` create, with hashtag facets, `app.bsky.embed.images` blobs and a reply ref."""
    record: dict[str, Any] = {"$type": POST, "createdAt": created_at or _iso_us(time_us), "langs": list(langs),
                              "text": text}
    if facets := _tag_facets(text):
        record["facets"] = facets
    if image_cids:
        record["embed"] = {"$type": "app.bsky.embed.images", "images": [
            {"alt": "", "aspectRatio": {"width": 64, "height": 64}, "image": blob_ref(cid)} for cid in image_cids]}
    if reply:
        parent = {"cid": cid_for(f"{did}/{rkey}/parent".encode()),
                  "uri": f"at://{did}/{POST}/{tid(max(0, time_us - 60_000_000), 2)}"}
        record["reply"] = {"parent": parent, "root": parent}
    return commit_event(did, POST, rkey, time_us, record)


def delete_event(did: str, rkey: str, time_us: int, *, collection: str = POST) -> dict[str, Any]:
    """A commit delete of `at://did/collection/rkey`."""
    return commit_event(did, collection, rkey, time_us, None, operation="delete")


def identity_event(did: str, time_us: int, *, handle: str | None = None, seq: int = 1) -> dict[str, Any]:
    """An identity event (handle change); delivered whatever the collection filter says."""
    identity: dict[str, Any] = {"did": did, "seq": seq, "time": _iso_us(time_us)}
    if handle is not None:
        identity["handle"] = handle
    return {"did": did, "time_us": time_us, "kind": "identity", "identity": identity}


def account_event(did: str, time_us: int, *, active: bool = True, status: str | None = None,
                  seq: int = 1) -> dict[str, Any]:
    """An account status event (e.g. `active=False, status="deleted"`); bypasses the collection filter too."""
    account: dict[str, Any] = {"active": active, "did": did, "seq": seq, "time": _iso_us(time_us)}
    if status is not None:
        account["status"] = status
    return {"did": did, "time_us": time_us, "kind": "account", "account": account}


def _did(seed: int, index: int) -> str:
    digest = hashlib.sha256(f"{seed}:{index}".encode()).digest()
    return "did:plc:" + base64.b32encode(digest).decode().lower()[:24]


def sample_events(count: int, *, seed: int = 0, start_us: int = START_US,
                  brands: Sequence[str] = ("acme", "globex", "initech"), delete_share: float = 0.02,
                  image_share: float = 0.2, other_langs_share: float = 0.1) -> list[dict[str, Any]]:
    """`count` events shaped like the live network: mostly posts about `brands` (some #tagged, some with images,
    some replies, some not in English), likes/reposts/follows a post filter must drop, a few identity and account
    events, and deletes of earlier posts. `time_us` strictly increases; the same seed gives the same list."""
    rng = random.Random(seed)
    dids = [_did(seed, i) for i in range(24)]
    time_us = start_us
    live_posts: list[tuple[str, str]] = []
    events: list[dict[str, Any]] = []
    for _ in range(count):
        time_us += rng.randint(1_000, 250_000)
        did = rng.choice(dids)
        roll = rng.random()
        if live_posts and roll < delete_share:
            victim = live_posts.pop(rng.randrange(len(live_posts)))
            events.append(delete_event(*victim, time_us))
            continue
        roll = rng.random()
        if roll < 0.01:
            events.append(identity_event(did, time_us, handle=f"user{dids.index(did)}.bsky.social", seq=len(events)))
        elif roll < 0.015:
            events.append(account_event(did, time_us, seq=len(events)))
        elif roll < 0.30 and live_posts:
            collection = rng.choice(("app.bsky.feed.like", "app.bsky.feed.like", "app.bsky.feed.repost"))
            subject_did, subject_rkey = rng.choice(live_posts)
            subject = {"cid": cid_for(f"{subject_did}/{subject_rkey}".encode()),
                       "uri": f"at://{subject_did}/{POST}/{subject_rkey}"}
            events.append(commit_event(did, collection, tid(time_us, 3), time_us,
                                       {"$type": collection, "createdAt": _iso_us(time_us), "subject": subject}))
        elif roll < 0.35:
            events.append(commit_event(did, "app.bsky.graph.follow", tid(time_us, 3), time_us, {
                "$type": "app.bsky.graph.follow", "createdAt": _iso_us(time_us), "subject": rng.choice(dids)}))
        else:
            brand = rng.choice(brands)
            lang = rng.choice(OTHER_LANGS) if rng.random() < other_langs_share else "en"
            text = rng.choice(TEXTS[lang]).format(b=brand.title() if rng.random() < 0.7 else brand)
            if rng.random() < 0.3:
                text += f" #{brand}"
            images = ([cid_for(f"{seed}:{time_us}:{k}".encode(), raw=True) for k in range(rng.randint(1, 4))]
                      if rng.random() < image_share else [])
            rkey = tid(time_us)
            events.append(post_event(did, rkey, time_us, text, langs=(lang,), image_cids=images,
                                     reply=rng.random() < 0.15))
            live_posts.append((did, rkey))
    return events


class _Filter:
    """One subscription's wantedCollections / wantedDids, matched as Jetstream v1 documents."""

    def __init__(self, collections: Iterable[str], dids: Iterable[str]) -> None:
        collections = set(collections)
        self.exact = {c for c in collections if not c.endswith(".*")}
        self.prefixes = tuple(c[:-1] for c in collections if c.endswith(".*"))  # keep the dot: "app.bsky.feed."
        self.any_collection = not collections
        self.dids = set(dids)

    def wants(self, event: dict[str, Any]) -> bool:
        if self.dids and event.get("did") not in self.dids:
            return False
        if self.any_collection or event.get("kind") != "commit":  # identity/account always pass this filter
            return True
        commit = event.get("commit")
        collection = commit.get("collection", "") if isinstance(commit, dict) else ""
        return not collection or collection in self.exact or collection.startswith(self.prefixes)


class JetstreamReplayServer(ReplayServer[dict[str, Any]]):
    """Serves `GET /subscribe` (WebSocket) over a held event list that tests release step by step.

    `events_per_connection` closes each connection after that many events, to exercise reconnect-with-cursor.
    `connections` counts subscriptions and `cursors` records each one's cursor (None when absent).
    """

    name = "jetstream"

    def __init__(self, events: Sequence[dict[str, Any]], *, events_per_connection: int | None = None) -> None:
        super().__init__(events)
        self.events_per_connection = events_per_connection
        self.connections = 0
        self.cursors: list[int | None] = []
        self.blob_requests: list[str] = []

    @property
    def ws_url(self) -> str:
        """`ws://127.0.0.1:<port>/subscribe`, what a client connects to."""
        return self.url.replace("http://", "ws://", 1) + "/subscribe"

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/subscribe", self._subscribe)
        app.router.add_get("/img/{variant}/plain/{did}/{cid}@jpeg", self._blob)

    async def _blob(self, request: web.Request) -> web.Response:
        """cdn.bsky.app's image URL shape: any CID gets a small JPEG (the CDN serves blobs as re-encoded JPEGs)."""
        cid = request.match_info["cid"]
        self.blob_requests.append(cid)
        return web.Response(body=sample_jpeg(cid), content_type="image/jpeg",
                            headers={"Cache-Control": "public, max-age=604800"})

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        collections, dids = query.getall("wantedCollections", []), query.getall("wantedDids", [])
        if len(set(collections)) > MAX_WANTED_COLLECTIONS or len(set(dids)) > MAX_WANTED_DIDS:
            raise web.HTTPBadRequest(text="too many wantedCollections or wantedDids")
        if query.get("compress", "").lower() == "true" or request.headers.get("Socket-Encoding") == "zstd":
            # Loud rather than silently uncompressed: a client asking for zstd would fail to decode text frames.
            raise web.HTTPBadRequest(text="zstd compression is not implemented by the replay server")
        try:
            cursor = int(query["cursor"]) if query.get("cursor") else None
            max_size = int(query.get("maxMessageSizeBytes") or 0)
        except ValueError:
            raise web.HTTPBadRequest(text="cursor and maxMessageSizeBytes must be integers") from None
        self.connections += 1
        self.cursors.append(cursor)
        released_at_connect = self._log.released  # before the handshake: a client that is connected is counted
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._track(request)
        log.info("jetstream subscriber connected", cursor=cursor, collections=collections, dids=len(dids),
                 released=released_at_connect)
        pump = asyncio.create_task(self._pump(ws, _Filter(collections, dids), cursor, released_at_connect,
                                              max(0, max_size)))
        try:
            async for message in ws:  # options_update and other client messages are read and ignored
                if message.type == WSMsgType.TEXT:
                    log.info("jetstream subscriber message ignored", message=message.data[:200])
        finally:
            self._untrack(request)
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        return ws

    async def _pump(self, ws: web.WebSocketResponse, wanted: _Filter, cursor: int | None, released_at_connect: int,
                    max_size: int) -> None:
        """Released events from the subscription's start, then each new release, until the connection ends.

        Events are sent as held, malformed ones included (tests use them to exercise a client's error path)."""
        try:
            await self._send_events(ws, wanted, cursor, released_at_connect, max_size)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:  # a bug here must not leave the client waiting on a silent socket
            log.exception("jetstream replay failed")
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"replay server error")

    async def _send_events(self, ws: web.WebSocketResponse, wanted: _Filter, cursor: int | None,
                           released_at_connect: int, max_size: int) -> None:
        position = 0 if cursor is not None else released_at_connect
        sent = 0
        while not ws.closed:
            while position < self._log.released:
                event = self._log.items[position]
                position += 1
                replayed = position <= released_at_connect
                time_us = event.get("time_us")
                if replayed and cursor is not None and isinstance(time_us, int) and time_us < cursor:
                    continue
                if not wanted.wants(event):
                    continue
                frame = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
                if max_size and len(frame.encode()) > max_size:
                    continue
                await ws.send_str(frame)
                sent += 1
                if self.events_per_connection is not None and sent >= self.events_per_connection:
                    log.info("jetstream closing after events_per_connection", sent=sent)
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"events_per_connection reached")
                    return
            await self._log.wait_beyond(position)
