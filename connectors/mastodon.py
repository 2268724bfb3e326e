"""Mastodon: a server's streaming API (server-sent events) for live statuses, its REST timelines to fill gaps.

The stream has no cursor, so the offset is the highest status id acknowledged. On every (re)connect the connector
first opens the stream, then pages the matching REST timeline forward from that id (`min_id`) until it is caught
up, then reads the stream, skipping what the catch-up already gave: no gap between the two, and no duplicate that
the post id would not dedupe. REST requests honour the server's `X-RateLimit-*` headers and 429 answers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp

from connectors import metrics
from connectors.backoff import Backoff
from connectors.source import Offset, SourceRecord, SourceRefused
from connectors.text import html_to_text, parse_time, post_id
from core.logging import get_logger
from schemas import Post, PostDeletion

log = get_logger(__name__)

Stream = Literal["public", "public:local", "hashtag"]
PAGE_SIZE = 40
MAX_EVENT_BYTES = 1 << 20


def status_order(status_id: str) -> tuple[int, str]:
    """Mastodon ids are integers in strings of growing length: compare by length, then text."""
    return len(status_id), status_id


class ServerSentEvents:
    """Events of a `text/event-stream` body as (event, data), per the WHATWG HTML spec's parsing rules: comment
    lines (heartbeats) skipped, multi-line data joined, an event dispatched at a blank line."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def __aiter__(self) -> AsyncIterator[tuple[str, str]]:
        event, data = "message", []
        async for raw in self.response.content:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                if data:
                    yield event, "\n".join(data)
                event, data = "message", []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)


class MastodonSource:
    """Statuses of one stream of one server (`public`, `public:local`, or `hashtag` with `tag`)."""

    def __init__(self, instance: str, *, stream: Stream = "public", tag: str | None = None,
                 access_token: str | None = None, streaming_url: str | None = None, name: str = "mastodon",
                 backoff: Backoff | None = None) -> None:
        if stream == "hashtag" and not tag:
            raise ValueError("the hashtag stream needs a tag")
        self.instance = instance.rstrip("/")
        self.stream = stream
        self.tag = (tag or "").lstrip("#")
        self.access_token = access_token
        self.streaming_url = streaming_url.rstrip("/") if streaming_url else None
        self.name = name
        self.backoff = backoff or Backoff(0.5, 60.0)
        self._last_id: str | None = None
        self._labels = {"connector": name}

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"} if self.access_token else {}

    def _stream_path(self) -> tuple[str, dict[str, str]]:
        if self.stream == "hashtag":
            return "/api/v1/streaming/hashtag", {"tag": self.tag}
        return ("/api/v1/streaming/public/local" if self.stream == "public:local" else "/api/v1/streaming/public"), {}

    def _timeline(self) -> tuple[str, dict[str, str]]:
        if self.stream == "hashtag":
            return f"/api/v1/timelines/tag/{self.tag}", {}
        return "/api/v1/timelines/public", ({"local": "true"} if self.stream == "public:local" else {})

    async def records(self, offset: Offset | None) -> AsyncIterator[SourceRecord]:
        self._last_id = str(offset["last_id"]) if offset and offset.get("last_id") else None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=90)
        async with aiohttp.ClientSession(headers=self._headers(), timeout=timeout) as session:
            streaming = self.streaming_url or await self._streaming_base(session)
            while True:
                try:
                    path, query = self._stream_path()
                    async with session.get(streaming + path, params=query) as response:
                        if response.status in (401, 403):
                            raise SourceRefused(f"{streaming + path} answered {response.status}: this server "
                                                  "needs an access token (--access-token / MASTODON_ACCESS_TOKEN)")
                        response.raise_for_status()
                        log.info("mastodon stream open", url=streaming + path, catch_up_from=self._last_id)
                        async for record in self._catch_up(session):
                            yield record
                        async for event, data in ServerSentEvents(response):
                            record = self.record(event, data)
                            if record is not None:
                                self.backoff.reset()
                                yield record
                    log.warning("mastodon stream ended", url=streaming + path)
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.warning("mastodon connection failed", instance=self.instance, error=str(exc))
                metrics.RECONNECTS.labels(**self._labels).inc()
                await asyncio.sleep(self.backoff.next())

    async def _streaming_base(self, session: aiohttp.ClientSession) -> str:
        """Where the server streams: `configuration.urls.streaming` of `/api/v2/instance` (often another host),
        else the server itself."""
        try:
            async with session.get(f"{self.instance}/api/v2/instance") as response:
                if response.status == 200:
                    urls = ((await response.json()).get("configuration") or {}).get("urls") or {}
                    if urls.get("streaming"):
                        return str(urls["streaming"]).rstrip("/").replace("wss://", "https://", 1)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.info("no streaming URL from the instance; using the instance itself", error=str(exc))
        return self.instance

    async def _catch_up(self, session: aiohttp.ClientSession) -> AsyncIterator[SourceRecord]:
        """Statuses newer than the offset, oldest first, a page at a time (`min_id` paging)."""
        if self._last_id is None:
            return
        path, query = self._timeline()
        while True:
            page = await self._get_json(session, self.instance + path, {**query, "min_id": self._last_id,
                                                                          "limit": str(PAGE_SIZE)})
            if not page:
                return
            for status in sorted(page, key=lambda s: status_order(str(s.get("id", "")))):
                record = self.record("update", json.dumps(status))
                if record is not None:
                    yield record

    async def _get_json(self, session: aiohttp.ClientSession, url: str, query: dict[str, str]) -> Any:
        """One REST request, waiting out the server's rate limit (429, or no requests remaining until the reset)."""
        while True:
            async with session.get(url, params=query) as response:
                if response.status == 429:
                    await asyncio.sleep(_seconds_until_reset(response, default=self.backoff.next()))
                    continue
                response.raise_for_status()
                body = await response.json()
                if response.headers.get("X-RateLimit-Remaining") == "0":
                    await asyncio.sleep(_seconds_until_reset(response, default=60.0))
                return body

    def record(self, event: str, data: str) -> SourceRecord | None:
        """The record of one stream event (None for events that are not statuses or deletions)."""
        if event == "delete":
            deletion = PostDeletion(post_id=self.post_id(data.strip()), deleted_at=datetime.now(UTC),
                                    source="mastodon")
            return SourceRecord(value=deletion)
        if event != "update":
            return None
        try:
            status = json.loads(data)
            status_id = str(status["id"])
        except (ValueError, KeyError, TypeError) as exc:
            return SourceRecord(malformed=f"mastodon update without a readable id: {exc}", raw=data.encode())
        if self._last_id is not None and status_order(status_id) <= status_order(self._last_id):
            return None  # the catch-up gave it already
        self._last_id = status_id
        offset = {"last_id": status_id}
        try:
            created = parse_time(status.get("created_at"))
            post, hashtags = self._post(status_id, status, created)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            return SourceRecord(offset=offset, malformed=f"mastodon status {status_id}: {exc}"[:2000],
                                raw=data.encode()[:MAX_EVENT_BYTES])
        return SourceRecord(value=post, offset=offset, source_time=created, hashtags=hashtags)

    def post_id(self, status_id: str) -> str:
        """The status's REST URL on this server: a delete event names only the id, so the id must be derivable."""
        return post_id(f"{self.instance}/api/v1/statuses/{status_id}")

    def _post(self, status_id: str, status: dict[str, Any], created: datetime | None
              ) -> tuple[Post | None, frozenset[str]]:
        hashtags = frozenset(str(t["name"]).lower() for t in status.get("tags") or () if t.get("name"))
        if status.get("reblog"):
            return None, hashtags  # a boost repeats its original, which has its own id
        parts = [status.get("spoiler_text") or "", html_to_text(status.get("content") or "")]
        text = "\n".join(p for p in parts if p)
        image = next((m.get("preview_url") or m.get("url") for m in status.get("media_attachments") or ()
                      if m.get("type") in ("image", "gifv") and (m.get("preview_url") or m.get("url"))), None)
        if not text.strip() and image is None:
            return None, hashtags
        language = status.get("language")
        post = Post(post_id=self.post_id(status_id), created_at=created or datetime.now(UTC), text=text,
                    image_url=image, source="mastodon", lang=str(language).lower() if language else None)
        return post, hashtags


def _seconds_until_reset(response: aiohttp.ClientResponse, default: float) -> float:
    """From `Retry-After` (seconds) or `X-RateLimit-Reset` (a time), never negative, at most 5 minutes."""
    retry_after = response.headers.get("Retry-After", "")
    if retry_after.isdigit():
        return min(300.0, float(retry_after))
    reset = parse_time(response.headers.get("X-RateLimit-Reset"))
    if reset is not None:
        return min(300.0, max(0.0, (reset - datetime.now(UTC)).total_seconds()))
    return default
