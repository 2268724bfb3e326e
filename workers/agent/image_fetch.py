"""Images that posts link to (`image_url`) instead of inlining: fetched by the worker, so the model sees them.

A post's URL is untrusted input. Fetched as it is, it could make a worker probe its own network (a cloud
metadata endpoint, an admin port on localhost): only http(s) is fetched, and by default only from public
addresses, checked for every redirect hop, for literal IPs and for every address a name resolves to
(`PublicResolver`). A response larger than `max_bytes` is cut off unread; the whole fetch, redirects included,
has `timeout_s`. A failure is an explanation, not an exception: `Triage` then scores the post's text alone.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

MAX_REDIRECTS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK_BYTES = 64 * 1024


class FetchFailed(Exception):
    """Why a linked image could not be fetched (the message is the reason a metric and a log line carry)."""


def is_public(address: str) -> bool:
    """Globally routable: not loopback, private, link-local (cloud metadata), shared, reserved or multicast."""
    return ipaddress.ip_address(address.split("%")[0]).is_global


class PublicResolver(AbstractResolver):
    """aiohttp's resolver, keeping only public addresses: a name cannot lead a worker into its own network."""

    def __init__(self) -> None:
        self._resolver = aiohttp.ThreadedResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        public = [answer for answer in await self._resolver.resolve(host, port, family) if is_public(answer["host"])]
        if not public:
            # aiohttp reports an OSError's strerror: its message without one would be "[None]"
            raise OSError(errno.EADDRNOTAVAIL, f"{host} resolves to no public address")
        return public

    async def close(self) -> None:
        await self._resolver.close()


class ImageFetcher:
    """One HTTP session per worker process, opened on first use in the event loop that fetches."""

    def __init__(self, timeout_s: float, max_bytes: int, concurrency: int, private_hosts: bool) -> None:
        self.timeout_s, self.max_bytes = timeout_s, max_bytes
        self.concurrency, self.private_hosts = concurrency, private_hosts
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self.concurrency,
                                             resolver=None if self.private_hosts else PublicResolver())
            self._session = aiohttp.ClientSession(connector=connector, headers={"User-Agent": "sentiment-monitor"})
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch_all(self, urls: list[str]) -> list[bytes | FetchFailed]:
        """Every URL at once (the connector caps connections), each its bytes or why not."""
        return list(await asyncio.gather(*(self._fetch_or_failure(url) for url in urls)))

    async def _fetch_or_failure(self, url: str) -> bytes | FetchFailed:
        try:
            return await asyncio.wait_for(self.fetch(url), self.timeout_s)
        except FetchFailed as failure:
            return failure
        except TimeoutError:
            return FetchFailed(f"no answer within {self.timeout_s} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return FetchFailed(f"{type(exc).__name__}: {exc}"[:300])

    async def fetch(self, url: str) -> bytes:
        """The body at `url`, following up to MAX_REDIRECTS redirects, each hop checked like the first."""
        target = URL(url)
        for _ in range(MAX_REDIRECTS + 1):
            self._check(target)
            async with self._open().get(target, allow_redirects=False) as response:
                if response.status in REDIRECTS and "Location" in response.headers:
                    target = target.join(URL(response.headers["Location"]))
                    continue
                if response.status != 200:
                    raise FetchFailed(f"HTTP {response.status}")
                return await self._body(response)
        raise FetchFailed(f"more than {MAX_REDIRECTS} redirects")

    def _check(self, url: URL) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise FetchFailed(f"only http(s) URLs are fetched, not {url.scheme or 'a relative'} URL")
        if self.private_hosts:
            return
        try:
            literal: Any = ipaddress.ip_address(url.host)
        except ValueError:
            return  # a name: `PublicResolver` checks what it resolves to
        if not literal.is_global:
            raise FetchFailed(f"{url.host} is not a public address")

    async def _body(self, response: aiohttp.ClientResponse) -> bytes:
        if (response.content_length or 0) > self.max_bytes:
            raise FetchFailed(f"image of {response.content_length} bytes exceeds limit of {self.max_bytes}")
        body = bytearray()
        async for chunk in response.content.iter_chunked(CHUNK_BYTES):
            body += chunk
            if len(body) > self.max_bytes:
                raise FetchFailed(f"image exceeds limit of {self.max_bytes} bytes")
        return bytes(body)
