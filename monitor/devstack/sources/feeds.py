"""A local web server for RSS 2.0 / Atom 1.0 feeds that answers conditional GETs like a well-behaved origin.

Written from RFC 9110 (HTTP Semantics, which obsoletes RFC 7232) §8.8 validators and §13 conditional requests:
a strong `ETag` and a `Last-Modified` on every feed; `If-None-Match` (weak comparison, `*`, lists) answered with
304 and, only when it is absent, `If-Modified-Since`; `Retry-After` (§10.2.3) on injected failures. Feed readers
poll, so the point is to test that a connector sends its validators and treats 304 as "nothing new".
"""

from __future__ import annotations

import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import NamedTuple

from aiohttp import web

from core.logging import get_logger
from monitor.devstack.sources._base import LocalServer, sample_jpeg

log = get_logger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')


@dataclass(frozen=True)
class FeedItem:
    """One feed entry; `image_url` becomes an RSS enclosure / Atom enclosure link."""

    guid: str
    title: str
    link: str
    summary: str
    published: datetime
    image_url: str | None = None


class FeedRequest(NamedTuple):
    """What the server saw and answered, for assertions on a connector's polling."""

    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _rfc3339(moment: datetime) -> str:
    return _utc(moment).isoformat().replace("+00:00", "Z")


def rss_document(items: Sequence[FeedItem], *, title: str, link: str, description: str = "") -> bytes:
    """An RSS 2.0 document (rssboard.org/rss-specification): channel title/link/description, items with guid,
    RFC 822 pubDate and an image enclosure (length 0: unknown, as the RSS Profile advises)."""
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    ET.SubElement(channel, "title").text = title
    ET.SubElement(channel, "link").text = link
    ET.SubElement(channel, "description").text = description or title
    if items:
        ET.SubElement(channel, "lastBuildDate").text = format_datetime(_utc(max(i.published for i in items)))
    for item in items:
        node = ET.SubElement(channel, "item")
        ET.SubElement(node, "title").text = item.title
        ET.SubElement(node, "link").text = item.link
        ET.SubElement(node, "description").text = item.summary
        permalink = "true" if item.guid == item.link else "false"
        ET.SubElement(node, "guid", {"isPermaLink": permalink}).text = item.guid
        ET.SubElement(node, "pubDate").text = format_datetime(_utc(item.published))
        if item.image_url:
            ET.SubElement(node, "enclosure", {"url": item.image_url, "length": "0", "type": "image/jpeg"})
    return ET.tostring(rss, encoding="utf-8", xml_declaration=True)


def _atom_id(guid: str) -> str:
    """Atom ids are IRIs (RFC 4287 §4.2.6): a guid without a scheme becomes a stable urn:uuid."""
    return guid if ":" in guid else f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, guid)}"


def atom_document(items: Sequence[FeedItem], *, title: str, link: str, feed_id: str | None = None,
                  author: str = "Replay server") -> bytes:
    """An Atom 1.0 feed (RFC 4287): feed id/title/updated/author/link, entries with id, published, updated,
    alternate link, text summary, HTML content (with the image) and an enclosure link for the image."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        node = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        node.text = text
        return node

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", feed_id or _atom_id(link))
    sub(feed, "title", title)
    newest = max((i.published for i in items), default=datetime(2026, 1, 1, tzinfo=UTC))
    sub(feed, "updated", _rfc3339(newest))
    sub(sub(feed, "author"), "name", author)
    sub(feed, "link", href=link, rel="alternate")
    for item in items:
        entry = sub(feed, "entry")
        sub(entry, "id", _atom_id(item.guid))
        sub(entry, "title", item.title)
        sub(entry, "published", _rfc3339(item.published))
        sub(entry, "updated", _rfc3339(item.published))
        sub(entry, "link", href=item.link, rel="alternate")
        sub(entry, "summary", item.summary, type="text")
        content = f"<p>{_escape(item.summary)}</p>"
        if item.image_url:
            content += f'<p><img src="{_escape(item.image_url)}" alt=""/></p>'
            sub(entry, "link", href=item.image_url, rel="enclosure", type="image/jpeg")
        sub(entry, "content", content, type="html")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _content_type(body: bytes) -> str:
    head = body[:1024]
    if b"<feed" in head and ATOM_NS.encode() in head:
        return "application/atom+xml"
    return "application/rss+xml" if b"<rss" in head else "application/xml"


@dataclass
class _Feed:
    body: bytes
    etag: str
    last_modified: datetime


class FeedServer(LocalServer):
    """Serves each feed path with validators and 304s; `set_feed` publishes a change, `fail_next` an outage."""

    name = "feeds"

    def __init__(self, feeds: dict[str, bytes | str]) -> None:
        super().__init__()
        self._feeds: dict[str, _Feed] = {}
        self._failures: dict[str, deque[tuple[int, int | None]]] = {}
        self.requests: list[FeedRequest] = []
        self.image_requests: list[str] = []
        for path, body in feeds.items():
            self.set_feed(path, body)

    def feed_url(self, path: str) -> str:
        return self.url + _path(path)

    def image_url(self, name: str) -> str:
        """A URL of the static image route, for FeedItem.image_url."""
        return f"{self.url}/images/{name}"

    def etag(self, path: str) -> str:
        return self._feeds[_path(path)].etag

    def set_feed(self, path: str, body: bytes | str) -> None:
        """Publish (or replace) a feed: a new strong ETag and a Last-Modified later than the previous one."""
        path, data = _path(path), body.encode() if isinstance(body, str) else body
        now = datetime.now(UTC).replace(microsecond=0)
        previous = self._feeds.get(path)
        if previous is not None and previous.body == data:
            return  # same representation, same validators
        if previous is not None:  # HTTP dates have one-second resolution: a change must move the date
            now = max(now, previous.last_modified + timedelta(seconds=1))
        etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        self._feeds[path] = _Feed(data, etag, now)
        log.info("feed published", path=path, etag=etag, bytes=len(data))

    def fail_next(self, path: str, status: int = 503, retry_after: int | None = None) -> None:
        """The next request for `path` gets `status` (queued: call twice to fail twice)."""
        self._failures.setdefault(_path(path), deque()).append((status, retry_after))

    def _routes(self, app: web.Application) -> None:
        app.router.add_get("/images/{name}", self._image)
        app.router.add_get("/{path:.*}", self._feed)

    async def _image(self, request: web.Request) -> web.Response:
        self.image_requests.append(request.match_info["name"])
        return web.Response(body=sample_jpeg(request.match_info["name"]), content_type="image/jpeg")

    async def _feed(self, request: web.Request) -> web.Response:
        path = request.path
        if_none_match = request.headers.get("If-None-Match")
        if_modified_since = request.headers.get("If-Modified-Since")
        response = self._answer(path, if_none_match, if_modified_since)
        self.requests.append(FeedRequest(path, if_none_match, if_modified_since, response.status))
        return response

    def _answer(self, path: str, if_none_match: str | None, if_modified_since: str | None) -> web.Response:
        failures = self._failures.get(path)
        if failures:
            status, retry_after = failures.popleft()
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            log.info("feed failure injected", path=path, status=status, retry_after=retry_after)
            return web.Response(status=status, text=f"injected failure {status}", headers=headers)
        feed = self._feeds.get(path)
        if feed is None:
            return web.Response(status=404, text="no such feed")
        headers = {"ETag": feed.etag, "Last-Modified": format_datetime(feed.last_modified, usegmt=True),
                   "Cache-Control": "max-age=0"}
        if _not_modified(feed, if_none_match, if_modified_since):
            return web.Response(status=304, headers=headers)
        return web.Response(body=feed.body, headers=headers, content_type=_content_type(feed.body), charset="utf-8")


def _path(path: str) -> str:
    return path if path.startswith("/") else f"/{path}"


def _not_modified(feed: _Feed, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110 §13.2.2 for GET/HEAD: If-None-Match decides when present (weak comparison, §8.8.3.2);
    If-Modified-Since only without it, and an unparsable date is ignored (§13.1.3)."""
    if if_none_match is not None:
        if if_none_match.strip() == "*":
            return True
        current = feed.etag.removeprefix("W/")
        return any(f'"{opaque}"' == current for _weak, opaque in _ENTITY_TAG.findall(if_none_match))
    if if_modified_since is None or "," in if_modified_since.split(" ", 1)[-1]:
        return False  # absent, or more than one member: ignored
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return feed.last_modified <= since
