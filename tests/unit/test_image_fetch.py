"""`ImageFetcher` against a real HTTP server on this machine (aiohttp's), and its guard against private addresses."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from tests.http_helpers import serving
from workers.agent.image_fetch import FetchFailed, ImageFetcher, PublicResolver, is_public

IMAGE = b"\xff\xd8\xff" + bytes(range(256)) * 40  # 10 KiB standing in for a JPEG


@pytest.fixture
async def server():
    async def image(request):
        return web.Response(body=IMAGE, content_type="image/jpeg")

    async def streamed(request):  # no Content-Length: the cap must hold while reading
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(8):
            await response.write(IMAGE)
        return response

    async def slow(request):
        await asyncio.sleep(5)
        return web.Response(body=IMAGE)

    def redirect(to):
        async def handler(request):
            raise web.HTTPFound(to)
        return handler

    app = web.Application()
    app.router.add_get("/image.jpg", image)
    app.router.add_get("/streamed", streamed)
    app.router.add_get("/slow", slow)
    app.router.add_get("/moved", redirect("/image.jpg"))
    app.router.add_get("/loop", redirect("/loop"))
    app.router.add_get("/to-metadata", redirect("http://169.254.169.254/latest/meta-data/"))
    async with serving(app) as base_url:
        yield base_url


def fetcher(private_hosts: bool = True, max_bytes: int = 64 * 1024, timeout_s: float = 2.0) -> ImageFetcher:
    return ImageFetcher(timeout_s=timeout_s, max_bytes=max_bytes, concurrency=4, private_hosts=private_hosts)


async def test_fetches_images_and_follows_redirects(server):
    images = fetcher()
    try:
        assert await images.fetch_all([f"{server}/image.jpg", f"{server}/moved"]) == [IMAGE, IMAGE]
    finally:
        await images.close()


@pytest.mark.parametrize(("path", "reason"), [
    ("/missing", "HTTP 404"),
    ("/loop", "more than 3 redirects"),
    ("/streamed", "exceeds limit of 65536 bytes"),
    ("/slow", "no answer within 0.5 s"),
])
async def test_a_failed_fetch_is_a_reason_not_an_exception(server, path, reason):
    images = fetcher(timeout_s=0.5)
    try:
        (failure,) = await images.fetch_all([server + path])
    finally:
        await images.close()
    assert isinstance(failure, FetchFailed) and reason in str(failure)


async def test_a_declared_length_over_the_limit_is_not_read(server):
    images = fetcher(max_bytes=1000)
    try:
        (failure,) = await images.fetch_all([f"{server}/image.jpg"])
    finally:
        await images.close()
    assert str(failure) == f"image of {len(IMAGE)} bytes exceeds limit of 1000"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "data:image/png;base64,AAAA"])
async def test_only_http_and_https_are_fetched(url):
    images = fetcher()
    try:
        (failure,) = await images.fetch_all([url])
    finally:
        await images.close()
    assert "only http(s) URLs are fetched" in str(failure)


async def test_by_default_no_private_address_is_fetched(server):
    """By literal address and by a name that resolves to one (redirects: the next test)."""
    port = server.rsplit(":", 1)[1]
    images = fetcher(private_hosts=False)
    try:
        literal, name, metadata, decimal, mapped = await images.fetch_all([
            f"{server}/image.jpg", f"http://localhost:{port}/image.jpg", "http://169.254.169.254/latest/meta-data/",
            f"http://2130706433:{port}/image.jpg", f"http://[::ffff:127.0.0.1]:{port}/image.jpg"])
    finally:
        await images.close()
    assert str(literal) == "127.0.0.1 is not a public address"
    assert "localhost resolves to no public address" in str(name)
    assert str(metadata) == "169.254.169.254 is not a public address"
    assert isinstance(decimal, FetchFailed) and "2130706433" in str(decimal)  # 127.0.0.1 as one number: refused
    assert str(mapped) == "::ffff:7f00:1 is not a public address"  # 127.0.0.1, IPv4-mapped


async def test_a_redirect_into_the_private_network_is_refused(server):
    """The check runs on every hop: the first (this test's local server) is let through by hand, the
    redirect's target is refused."""
    images = fetcher(private_hosts=False)
    images._check = lambda url, check=images._check: None if url.host == "127.0.0.1" else check(url)
    try:
        (failure,) = await images.fetch_all([f"{server}/to-metadata"])
    finally:
        await images.close()
    assert str(failure) == "169.254.169.254 is not a public address"


def test_public_means_globally_routable():
    assert is_public("93.184.215.14") and is_public("2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    for private in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
                    "::1", "fe80::1%eth0", "fd00::1", "0.0.0.0"):
        assert not is_public(private), private


async def test_the_resolver_drops_private_answers():
    resolver = PublicResolver()
    try:
        with pytest.raises(OSError, match="no public address"):
            await resolver.resolve("localhost", 80)
    finally:
        await resolver.close()
