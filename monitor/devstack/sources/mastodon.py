"""A local Mastodon server: the streaming API over server-sent events and the public/hashtag timelines over REST.

Written from the Mastodon API documentation (docs.joinmastodon.org: methods/streaming, methods/timelines,
api/guidelines#pagination, api/rate-limits, entities/Status): `event: update` / `event: delete` SSE frames with
`:thump` heartbeat comments; live-only streams; newest-first timelines paged with `max_id` / `since_id` / `min_id`
and a `Link` header; `X-RateLimit-*` headers and 429; Bearer tokens. Connectors use the stream for live posts and
the timelines to catch up on what they missed while disconnected, so both halves share one release log.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from core.logging import get_logger
from monitor.devstack.sources._base import OTHER_LANGS, TEXTS, ReplayServer, sample_jpeg

log = get_logger(__name__)

MastodonItem = tuple[str, dict[str, Any] | str]  # ("update", status) or ("delete", status id)

DEFAULT_LIMIT, MAX_LIMIT = 20, 40  # documented for both timelines
START = datetime(2026, 1, 1, tzinfo=UTC)
_STREAMS = ("public", "public:media", "public:local", "public:local:media", "public:remote", "public:remote:media",
            "hashtag", "hashtag:local")
_PAGING_KEEP = ("local", "remote", "only_media", "limit", "any[]", "all[]", "none[]")  # kept in Link URLs


def snowflake_id(created_at: datetime, sequence: int = 0) -> str:
    """A Mastodon-style id: milliseconds since the epoch shifted left 16 bits, plus a sequence; sorts by time."""
    return str((int(created_at.timestamp() * 1000) << 16) | (sequence & 0xFFFF))


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _account(account: str, instance: str) -> dict[str, Any]:
    """An Account entity: `alice` is local to `instance`; `bob@elsewhere.example` is a remote account."""
    username, _, domain = account.partition("@")
    home = domain or instance
    numeric = str(int(hashlib.sha256(account.encode()).hexdigest()[:15], 16))
    return {"id": numeric, "username": username, "acct": account, "display_name": username.title(),
            "locked": False, "bot": False, "discoverable": True, "group": False,
            "created_at": "2023-04-01T00:00:00.000Z", "note": "", "url": f"https://{home}/@{username}",
            "uri": f"https://{home}/users/{username}",
            "avatar": f"https://{instance}/avatars/original/missing.png",
            "avatar_static": f"https://{instance}/avatars/original/missing.png",
            "header": f"https://{instance}/headers/original/missing.png",
            "header_static": f"https://{instance}/headers/original/missing.png",
            "followers_count": 12, "following_count": 34, "statuses_count": 56, "last_status_at": "2026-01-01",
            "emojis": [], "fields": []}


def _hashtag_link(tag: str, instance: str) -> str:
    return (f'<a href="https://{instance}/tags/{tag}" class="mention hashtag" rel="tag">#<span>{tag}</span></a>')


def status(id: str, text_html: str, *, created_at: datetime, language: str | None = "en", tags: Sequence[str] = (),
           media_urls: Sequence[str] = (), account: str = "alice", instance: str = "mastodon.test",
           sensitive: bool = False, spoiler_text: str = "", visibility: str = "public",
           in_reply_to_id: str | None = None) -> dict[str, Any]:
    """A Status entity as the API serialises it. Plain text is escaped; `#tag`s in it become hashtag links (tags
    not in the text are appended), and the content is one `<p>`, as Mastodon renders a simple toot."""
    body = text_html if text_html.lstrip().startswith("<") else html.escape(text_html, quote=False)
    for tag in tags:
        linked, found = re.subn(rf"#{re.escape(tag)}\b", lambda _m, t=tag: _hashtag_link(t, instance), body,
                                flags=re.IGNORECASE)
        body = linked if found else f"{body} {_hashtag_link(tag, instance)}"
    content = body if body.startswith("<p>") else f"<p>{body}</p>"
    author = _account(account, instance)
    username, _, domain = account.partition("@")
    home = domain or instance
    media = []
    for index, url in enumerate(media_urls):
        media.append({"id": str(int(id) + index + 1), "type": "image", "url": url,
                      "preview_url": url.replace("/original/", "/small/"), "remote_url": url if domain else None,
                      "preview_remote_url": None, "text_url": None, "meta": {}, "description": f"photo {index + 1}",
                      "blurhash": None})
    return {
        "id": id, "created_at": _iso(created_at), "in_reply_to_id": in_reply_to_id,
        "in_reply_to_account_id": author["id"] if in_reply_to_id else None, "sensitive": sensitive,
        "spoiler_text": spoiler_text, "visibility": visibility, "language": language,
        "uri": f"https://{home}/users/{username}/statuses/{id}", "url": f"https://{home}/@{username}/{id}",
        "replies_count": 0, "reblogs_count": 0, "favourites_count": 0, "edited_at": None, "content": content,
        "reblog": None, "application": None if domain else {"name": "Web", "website": None}, "account": author,
        "media_attachments": media, "mentions": [],
        "tags": [{"name": tag.lower(), "url": f"https://{instance}/tags/{tag.lower()}"} for tag in tags],
        "emojis": [], "card": None, "poll": None,
    }


_LOCAL_USERS = ("alice", "bruno", "chen", "dana", "emeka")
_REMOTE_USERS = ("frida@social.example", "gus@fosstodon.example", "hana@mstdn.example")


def sample_items(count: int, *, seed: int = 0, start: datetime = START,
                 brands: Sequence[str] = ("acme", "globex", "initech"), delete_share: float = 0.03,
                 image_share: float = 0.2, other_langs_share: float = 0.1, remote_share: float = 0.3,
                 instance: str = "mastodon.test", media_base: str | None = None) -> list[MastodonItem]:
    """`count` items: public statuses about `brands` (some #tagged, some with images, some remote, some not in
    English) and a few deletes of earlier ones; ids increase with time. Pass `media_base=f"{server.url}/system"`
    (and `append` the items to a started server) for media URLs the server itself serves."""
    rng = random.Random(seed)
    media_base = media_base or f"https://{instance}/system"
    moment = start
    live: list[str] = []
    items: list[MastodonItem] = []
    for sequence in range(count):
        moment += timedelta(milliseconds=rng.randint(200, 30_000))
        if live and rng.random() < delete_share:
            items.append(("delete", live.pop(rng.randrange(len(live)))))
            continue
        brand = rng.choice(brands)
        lang = rng.choice(OTHER_LANGS) if rng.random() < other_langs_share else "en"
        text = rng.choice(TEXTS[lang]).format(b=brand.title())
        tags = [brand] if rng.random() < 0.4 else []
        if tags and rng.random() < 0.5:
            text += f" #{brand}"
        status_id = snowflake_id(moment, sequence)
        media = ([f"{media_base}/media_attachments/files/{status_id}/original/{k}.jpeg"
                  for k in range(rng.randint(1, 4))] if rng.random() < image_share else [])
        author = rng.choice(_REMOTE_USERS) if rng.random() < remote_share else rng.choice(_LOCAL_USERS)
        items.append(("update", status(status_id, text, created_at=moment, language=lang, tags=tags,
                                       media_urls=media, account=author, instance=instance)))
        live.append(status_id)
    return items


def _matches(stream: str, tag: str | None, only_media: bool, item: dict[str, Any]) -> bool:
    """Whether a status belongs to a stream/timeline: public visibility, local/remote, hashtag, media."""
    if item.get("visibility") != "public":
        return False
    local = "@" not in item["account"]["acct"]
    parts = stream.split(":")
    if "local" in parts and not local or "remote" in parts and local:
        return False
    if (only_media or "media" in parts) and not item.get("media_attachments"):
        return False
    if parts[0] == "hashtag":
        return (tag or "").lower() in {t["name"].lower() for t in item.get("tags", [])}
    return True


class MastodonReplayServer(ReplayServer[MastodonItem]):
    """Mastodon's streaming (SSE) and timeline (REST) endpoints over a held list of updates and deletes.

    `rate_limit` allows that many REST requests per `rate_window_s` (Mastodon's default window is 5 minutes),
    then answers 429 until the window resets; streaming requests are not counted. `access_token` makes every
    endpoint but the health check require `Authorization: Bearer <token>` (streaming also takes `access_token=`).
    """

    name = "mastodon"

    def __init__(self, items: Sequence[MastodonItem], *, access_token: str | None = None,
                 rate_limit: int | None = None, rate_window_s: float = 300.0,
                 events_per_connection: int | None = None, heartbeat_s: float = 1.0) -> None:
        for kind, _payload in items:
            if kind not in ("update", "delete"):
                raise ValueError(f"item kind must be 'update' or 'delete', not {kind!r}")
        super().__init__(items)
        self.access_token = access_token
        self.rate_limit = rate_limit
        self.rate_window_s = rate_window_s
        self.events_per_connection = events_per_connection
        self.heartbeat_s = heartbeat_s
        self.connections = 0
        self.rest_requests: list[dict[str, str]] = []
        self.rest_paths: list[str] = []
        self._window_start: float | None = None
        self._window_count = 0

    def _routes(self, app: web.Application) -> None:
        streaming = {"/public": "public", "/public/local": "public:local", "/public/remote": "public:remote",
                     "/hashtag": "hashtag", "/hashtag/local": "hashtag:local"}
        app.router.add_get("/api/v1/streaming/health", self._health)
        for suffix, stream in streaming.items():
            app.router.add_get(f"/api/v1/streaming{suffix}", self._stream_handler(stream))
        app.router.add_get("/api/v1/streaming", self._stream_handler(None))
        app.router.add_get("/api/v1/streaming/{tail:.*}", self._unknown_channel)
        app.router.add_get("/api/v1/timelines/public", self._timeline)
        app.router.add_get("/api/v1/timelines/tag/{hashtag}", self._timeline)
        app.router.add_get("/system/{path:.+}", self._media)

    # --- authentication and rate limits -------------------------------------------------------------------------

    def _authorized(self, request: web.Request, *, query_token: bool) -> str | None:
        """None when the request may proceed, else the documented error text."""
        if self.access_token is None:
            return None
        header = request.headers.get("Authorization", "")
        token = header[7:] if header[:7].lower() == "bearer " else None
        if token is None and query_token:
            token = request.query.get("access_token")
        if token is None:
            return "Missing access token" if query_token else "The access token is invalid"
        return None if token == self.access_token else "The access token is invalid"

    def _rate_headers(self) -> dict[str, str]:
        """Count this REST request in the current window; the X-RateLimit-* headers that describe it."""
        if self.rate_limit is None:
            return {}
        now = time.time()
        if self._window_start is None or now >= self._window_start + self.rate_window_s:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        reset = datetime.fromtimestamp(self._window_start + self.rate_window_s, UTC)
        return {"X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - self._window_count)),
                "X-RateLimit-Reset": _iso(reset)}

    # --- streaming ----------------------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def _unknown_channel(self, request: web.Request) -> web.Response:
        return web.json_response({"error": "Unknown channel requested"}, status=400)

    def _stream_handler(self, fixed: str | None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The handler for one documented streaming path (`fixed`), or for `/api/v1/streaming?stream=…`."""

        async def handler(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                return web.json_response({"error": "WebSocket streaming is not implemented by the replay server"},
                                         status=501)
            if error := self._authorized(request, query_token=True):
                return web.json_response({"error": error}, status=401)
            stream = fixed or request.query.get("stream", "")
            only_media = request.query.get("only_media", "").lower() in ("true", "1")
            if stream == "public" and fixed and only_media:
                stream = "public:media"
            if stream not in _STREAMS:
                return web.json_response({"error": "Unknown stream type"}, status=400)
            tag = request.query.get("tag")
            if stream.startswith("hashtag") and not tag:
                return web.json_response({"error": "Missing tag name parameter"}, status=400)
            return await self._stream(request, stream, tag, only_media)
        return handler

    async def _stream(self, request: web.Request, stream: str, tag: str | None, only_media: bool) -> web.StreamResponse:
        self.connections += 1
        position = self._log.released  # live only: what happened before the connection is never sent
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        await response.prepare(request)
        self._track(request)
        log.info("mastodon stream connected", stream=stream, tag=tag, released=position)
        sent = 0
        try:
            await response.write(b":thump\n")
            while True:
                while position < self._log.released:
                    kind, payload = self._log.items[position]
                    position += 1
                    frame = self._frame(kind, payload, stream, tag, only_media)
                    if frame is None:
                        continue
                    await response.write(frame)
                    sent += 1
                    if self.events_per_connection is not None and sent >= self.events_per_connection:
                        log.info("mastodon stream closing after events_per_connection", sent=sent)
                        await response.write_eof()
                        return response
                if not await self._log.wait_beyond(position, timeout=self.heartbeat_s):
                    await response.write(b":thump\n")
        except ConnectionResetError:  # the client went away between two writes
            log.info("mastodon stream disconnected", stream=stream, sent=sent)
            return response
        except asyncio.CancelledError:
            log.info("mastodon stream disconnected", stream=stream, sent=sent)
            raise
        finally:
            self._untrack(request)

    def _frame(self, kind: str, payload: dict[str, Any] | str, stream: str, tag: str | None,
               only_media: bool) -> bytes | None:
        """The SSE frame for one item on this stream, or None when the item is not on it."""
        if kind == "update":
            assert isinstance(payload, dict)
            if not _matches(stream, tag, only_media, payload):
                return None
            data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
            return f"event: update\ndata: {data}\n\n".encode()
        deleted = self._status_by_id(str(payload))
        if deleted is None and stream.startswith("hashtag") or deleted is not None and not _matches(
                stream, tag, only_media, deleted):
            return None
        return f"event: delete\ndata: {payload}\n\n".encode()

    def _status_by_id(self, status_id: str) -> dict[str, Any] | None:
        for kind, payload in self._log.items:
            if kind == "update" and isinstance(payload, dict) and payload["id"] == status_id:
                return payload
        return None

    # --- REST timelines ------------------------------------------------------------------------------------------

    def _visible(self) -> list[dict[str, Any]]:
        """Released statuses not deleted by a released delete, newest (largest id) first."""
        statuses: dict[str, dict[str, Any]] = {}
        for kind, payload in self._log.items[:self._log.released]:
            if kind == "update" and isinstance(payload, dict):
                statuses[payload["id"]] = payload
            else:
                statuses.pop(str(payload), None)
        return sorted(statuses.values(), key=lambda s: int(s["id"]), reverse=True)

    async def _timeline(self, request: web.Request) -> web.Response:
        self.rest_requests.append(dict(request.query))
        self.rest_paths.append(request.path)
        headers = self._rate_headers()
        if self.rate_limit is not None and self._window_count > self.rate_limit:
            log.info("mastodon rate limit exceeded", path=request.path, limit=self.rate_limit)
            return web.json_response({"error": "Too many requests"}, status=429, headers=headers)
        if error := self._authorized(request, query_token=False):
            return web.json_response({"error": error}, status=401, headers=headers)
        query = request.query
        try:
            bounds = {key: int(query[key]) for key in ("max_id", "since_id", "min_id") if query.get(key)}
            limit = int(query["limit"]) if query.get("limit") else DEFAULT_LIMIT
        except ValueError:
            return web.json_response({"error": "max_id, since_id, min_id and limit must be numeric"}, status=400,
                                     headers=headers)
        limit = max(1, min(MAX_LIMIT, limit))
        truthy = {key: query.get(key, "").lower() in ("true", "1") for key in ("local", "remote", "only_media")}
        stream = "public" + (":local" if truthy["local"] else ":remote" if truthy["remote"] else "")
        tag = request.match_info.get("hashtag")
        candidates = [s for s in self._visible() if _matches(stream, None, truthy["only_media"], s)]
        if tag is not None:
            candidates = [s for s in candidates if _tags_match(query, tag, s)]
        if "max_id" in bounds:
            candidates = [s for s in candidates if int(s["id"]) < bounds["max_id"]]
        if "min_id" in bounds:  # the page right after min_id: the oldest `limit` newer ones, still newest first
            page = [s for s in candidates if int(s["id"]) > bounds["min_id"]][-limit:]
        else:
            if "since_id" in bounds:  # the newest `limit` newer than since_id (a gap may remain)
                candidates = [s for s in candidates if int(s["id"]) > bounds["since_id"]]
            page = candidates[:limit]
        links = []
        if len(page) == limit:
            links.append(f'<{self._page_url(request, max_id=page[-1]["id"])}>; rel="next"')
        if page:
            links.append(f'<{self._page_url(request, min_id=page[0]["id"])}>; rel="prev"')
        if links:
            headers["Link"] = ", ".join(links)
        return web.json_response(page, headers=headers, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))

    def _page_url(self, request: web.Request, **cursor: str) -> str:
        kept = [(key, value) for key in _PAGING_KEEP for value in request.query.getall(key, [])]
        return f"{self.url}{request.path}?{urlencode([*kept, *cursor.items()])}"

    async def _media(self, request: web.Request) -> web.Response:
        """Media files under /system/…: small JPEGs, so media URLs built with the server's address resolve."""
        return web.Response(body=sample_jpeg(request.match_info["path"]), content_type="image/jpeg")


def _tags_match(query: Any, tag: str, item: dict[str, Any]) -> bool:
    """The hashtag timeline: the path's tag or any of `any[]`, all of `all[]`, none of `none[]`."""
    names = {t["name"].lower() for t in item.get("tags", [])}
    wanted = {tag.lower(), *(t.lower() for t in query.getall("any[]", []))}
    if not names & wanted:
        return False
    if not {t.lower() for t in query.getall("all[]", [])} <= names:
        return False
    return not names & {t.lower() for t in query.getall("none[]", [])}
