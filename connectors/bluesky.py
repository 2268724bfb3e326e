"""Bluesky through Jetstream: the network's posts as JSON over a WebSocket, resumable from a microsecond cursor.

Jetstream (github.com/bluesky-social/jetstream) serves `/subscribe?wantedCollections=...&wantedDids=...&cursor=...`.
Each event carries `time_us`, the instance's clock in unix microseconds; the connector's offset is the last one
acknowledged, and a reconnect or a restart asks for events from there (the event at the cursor itself may come
again; its post id dedupes it). Posts become `Post`s with their at-URI as id and their first image as a CDN URL the
worker fetches; deletes become `PostDeletion`s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp

from connectors import metrics
from connectors.backoff import Backoff
from connectors.source import Offset, SourceRecord
from connectors.text import parse_time, post_id
from core.logging import get_logger
from schemas import Post, PostDeletion

log = get_logger(__name__)

DEFAULT_URL = "wss://jetstream2.us-east.bsky.network/subscribe"
DEFAULT_IMAGE_CDN = "https://cdn.bsky.app"
POST_COLLECTION = "app.bsky.feed.post"
MAX_EVENT_BYTES = 1 << 20
TAG_FACET = "app.bsky.richtext.facet#tag"


class JetstreamSource:
    """Posts and deletions of `app.bsky.feed.post` records, optionally of some accounts (`dids`) only."""

    def __init__(self, url: str = DEFAULT_URL, *, dids: Sequence[str] = (), image_cdn: str = DEFAULT_IMAGE_CDN,
                 name: str = "bluesky", backoff: Backoff | None = None) -> None:
        self.url = url if url.rstrip("/").endswith("/subscribe") else url.rstrip("/") + "/subscribe"
        self.dids = tuple(dids)
        self.image_cdn = image_cdn.rstrip("/")
        self.name = name
        self.backoff = backoff or Backoff(0.5, 60.0)

    def subscribe_url(self, cursor: int | None) -> str:
        query: list[tuple[str, Any]] = [("wantedCollections", POST_COLLECTION)]
        query += [("wantedDids", did) for did in self.dids]
        if cursor is not None:
            query.append(("cursor", cursor))
        return f"{self.url}?{urlencode(query)}"

    async def records(self, offset: Offset | None) -> AsyncIterator[SourceRecord]:
        cursor = int(offset["time_us"]) if offset and "time_us" in offset else None
        labels = {"connector": self.name}
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(self.subscribe_url(cursor), heartbeat=30,
                                                  max_msg_size=MAX_EVENT_BYTES) as socket:
                        log.info("jetstream connected", url=self.url, cursor=cursor)
                        async for message in socket:
                            if message.type != aiohttp.WSMsgType.TEXT:
                                if message.type == aiohttp.WSMsgType.ERROR:
                                    raise socket.exception() or aiohttp.ClientError("websocket error")
                                continue
                            record, time_us = self.record(message.data)
                            if time_us is not None:
                                cursor = time_us
                                self.backoff.reset()
                            yield record
                    log.warning("jetstream closed the connection", url=self.url, cursor=cursor)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.warning("jetstream connection failed", url=self.url, cursor=cursor, error=str(exc))
                metrics.RECONNECTS.labels(**labels).inc()
                await asyncio.sleep(self.backoff.next())

    def record(self, data: str) -> tuple[SourceRecord, int | None]:
        """The record of one event and its `time_us` (None when the event lacks one: it moves no cursor)."""
        try:
            event = json.loads(data)
            time_us = int(event["time_us"])
        except (ValueError, KeyError, TypeError) as exc:
            return SourceRecord(malformed=f"jetstream event without a readable time_us: {exc}",
                                raw=data.encode()[:MAX_EVENT_BYTES]), None
        offset = {"time_us": time_us}
        source_time = datetime.fromtimestamp(time_us / 1e6, UTC)
        commit = event.get("commit")
        if event.get("kind") != "commit" or not isinstance(commit, dict) or commit.get("collection") != POST_COLLECTION:
            return SourceRecord(offset=offset, source_time=source_time), time_us
        try:
            uri = post_id(f"at://{event['did']}/{POST_COLLECTION}/{commit['rkey']}")
            operation = commit["operation"]
            if operation == "delete":
                deletion = PostDeletion(post_id=uri, deleted_at=source_time, source="bluesky")
                return SourceRecord(value=deletion, offset=offset, source_time=source_time), time_us
            if operation not in ("create", "update"):
                return SourceRecord(offset=offset, source_time=source_time), time_us
            record = commit["record"]
            post, hashtags = self._post(uri, event["did"], record, source_time)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            return SourceRecord(offset=offset, source_time=source_time, malformed=f"jetstream post: {exc}"[:2000],
                                raw=data.encode()[:MAX_EVENT_BYTES]), time_us
        return SourceRecord(value=post, offset=offset, source_time=source_time, hashtags=hashtags), time_us

    def _post(self, uri: str, did: str, record: dict[str, Any], source_time: datetime
              ) -> tuple[Post | None, frozenset[str]]:
        text = record.get("text") or ""
        image = self._first_image(did, record.get("embed"))
        hashtags = {str(tag).lower() for tag in record.get("tags") or ()}
        for facet in record.get("facets") or ():
            for feature in facet.get("features") or ():
                if feature.get("$type") == TAG_FACET and feature.get("tag"):
                    hashtags.add(str(feature["tag"]).lower())
        if not text.strip() and image is None:
            return None, frozenset(hashtags)  # a bare repost of a link or a quote: nothing to score
        langs = record.get("langs") or ()
        post = Post(post_id=uri, created_at=parse_time(record.get("createdAt")) or source_time, text=text,
                    image_url=image, source="bluesky", lang=str(langs[0]).lower() if langs else None)
        return post, frozenset(hashtags)

    def _first_image(self, did: str, embed: Any) -> str | None:
        """The CDN URL of the post's first image (`app.bsky.embed.images`, or the media of a quote with media)."""
        if not isinstance(embed, dict):
            return None
        if embed.get("$type") == "app.bsky.embed.recordWithMedia":
            embed = embed.get("media") or {}
        if embed.get("$type") != "app.bsky.embed.images":
            return None
        for image in embed.get("images") or ():
            link = ((image.get("image") or {}).get("ref") or {}).get("$link")
            if link:
                return f"{self.image_cdn}/img/feed_fullsize/plain/{did}/{link}@jpeg"
        return None
