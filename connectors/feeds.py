"""RSS and Atom feeds (news, blogs, review sites, app-store reviews), polled with conditional GET.

Each poll sends the feed's last `ETag` and `Last-Modified` back (`If-None-Match`, `If-Modified-Since`), so an
unchanged feed costs a 304 and no parsing. New entries are those whose id was not seen before; the offset holds,
per feed, its validators and the ids of its most recent entries, and is saved once a poll's posts are acknowledged.
feedparser reads every RSS and Atom dialect (and their date formats) into one shape.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import aiohttp
import feedparser

from connectors import metrics
from connectors.backoff import Backoff
from connectors.source import Offset, SourceRecord
from connectors.text import html_to_text, post_id
from core.logging import get_logger
from schemas import Post

log = get_logger(__name__)

SEEN_PER_FEED = 5000
"""Entry ids remembered per feed: far more than any feed lists at once, so an old entry never comes back as new."""
MAX_FEED_BYTES = 16 << 20
USER_AGENT = "sentiment-monitor-feeds/1 (+https://github.com/; polite polling with conditional GET)"


class FeedSource:
    """New entries of some feeds, each feed polled every `interval_s` (sooner never; later if it asks with
    `Retry-After`)."""

    def __init__(self, urls: Sequence[str], *, interval_s: float = 300.0, name: str = "feeds",
                 backoff: Backoff | None = None) -> None:
        if not urls:
            raise ValueError("give at least one feed URL")
        self.urls = tuple(dict.fromkeys(urls))
        self.interval_s = interval_s
        self.name = name
        self.backoff = backoff or Backoff(1.0, 300.0)
        self._labels = {"connector": name}

    async def records(self, offset: Offset | None) -> AsyncIterator[SourceRecord]:
        state: dict[str, dict[str, Any]] = {url: {"etag": None, "modified": None, "seen": []} for url in self.urls}
        for url, saved in ((offset or {}).get("feeds") or {}).items():
            if url in state:
                state[url].update(saved)
        due = dict.fromkeys(self.urls, 0.0)
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}, timeout=timeout) as session:
            while True:
                url = min(due, key=due.__getitem__)
                await asyncio.sleep(max(0.0, due[url] - asyncio.get_running_loop().time()))
                wait = self.interval_s
                try:
                    async for record in self._poll(session, url, state[url]):
                        yield record
                    self.backoff.reset()
                except _RetryLater as later:
                    wait = max(later.seconds, self.backoff.next())
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    log.warning("feed poll failed", url=url, error=str(exc))
                    metrics.RECONNECTS.labels(**self._labels).inc()
                    wait = min(self.interval_s, max(1.0, self.backoff.next()))
                due[url] = asyncio.get_running_loop().time() + wait
                yield SourceRecord(offset={"feeds": {u: dict(s) for u, s in state.items()}})

    async def _poll(self, session: aiohttp.ClientSession, url: str, feed: dict[str, Any]
                    ) -> AsyncIterator[SourceRecord]:
        headers = {}
        if feed.get("etag"):
            headers["If-None-Match"] = feed["etag"]
        if feed.get("modified"):
            headers["If-Modified-Since"] = feed["modified"]
        async with session.get(url, headers=headers) as response:
            if response.status == 304:
                return
            if response.status in (429, 503):
                raise _RetryLater(float(response.headers.get("Retry-After", "0") or 0)
                                  if response.headers.get("Retry-After", "").isdigit() else 0.0)
            response.raise_for_status()
            body = await response.content.read(MAX_FEED_BYTES + 1)
            if len(body) > MAX_FEED_BYTES:
                yield SourceRecord(malformed=f"feed {url} is larger than {MAX_FEED_BYTES} bytes", raw=body[:4096])
                return
            feed["etag"] = response.headers.get("ETag")
            feed["modified"] = response.headers.get("Last-Modified")
        parsed = feedparser.parse(body, response_headers={"content-location": url})
        if parsed.bozo and not parsed.entries:
            yield SourceRecord(malformed=f"feed {url} could not be read: {parsed.get('bozo_exception')}"[:2000],
                               raw=body[:65536])
            return
        seen = set(feed["seen"])
        language = (parsed.feed.get("language") or "").split("-")[0].lower() or None
        for entry in reversed(parsed.entries):  # feeds list newest first; publish oldest first
            entry_id = entry_key(url, entry)
            if entry_id in seen:
                continue
            seen.add(entry_id)
            feed["seen"] = (feed["seen"] + [entry_id])[-SEEN_PER_FEED:]
            yield self._record(entry_id, entry, language)

    def _record(self, entry_id: str, entry: Any, language: str | None) -> SourceRecord:
        published = entry.get("published_parsed") or entry.get("updated_parsed")
        created = datetime.fromtimestamp(calendar.timegm(published), UTC) if published else datetime.now(UTC)
        summary = entry.get("summary") or ""
        text = "\n".join(p for p in (html_to_text(entry.get("title") or ""), html_to_text(summary)) if p)
        try:
            post = Post(post_id=post_id(entry_id), created_at=created, text=text, image_url=_image(entry),
                        source="rss", lang=language)
        except ValueError as exc:
            return SourceRecord(malformed=f"feed entry {entry_id}: {exc}"[:2000], raw=str(dict(entry)).encode()[:65536])
        return SourceRecord(value=post, source_time=created)


class _RetryLater(Exception):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


def entry_key(feed_url: str, entry: Any) -> str:
    """An entry's stable id: its guid / Atom id when that is globally unique (a URL, URN or tag URI), else
    qualified by the feed; its link; or, for entries with neither, a digest of title and date."""
    guid = entry.get("id") or entry.get("guid")
    if guid:
        return guid if ":" in guid else f"{feed_url}#{guid}"
    if entry.get("link"):
        return entry["link"]
    digest = hashlib.sha256(f"{entry.get('title')}|{entry.get('published')}".encode()).hexdigest()[:32]
    return f"{feed_url}#{digest}"


def _image(entry: Any) -> str | None:
    """The entry's image: an image enclosure, else Media RSS content or thumbnail."""
    for link in entry.get("enclosures") or ():
        if str(link.get("type", "")).startswith("image/") and link.get("href"):
            return link["href"]
    for media in (*(entry.get("media_content") or ()), *(entry.get("media_thumbnail") or ())):
        if media.get("url") and str(media.get("medium", "image")) == "image":
            return media["url"]
    return None
