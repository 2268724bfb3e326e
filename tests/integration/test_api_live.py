"""The live feed (SSE) from a real `monitor api` process, and its behaviour while Redis is unreachable."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from redis.asyncio import Redis

from core.process import free_port
from monitor.api.live import feed
from monitor.devstack.api_launch import start_api
from monitor.sink.writer import write_results
from monitor.store.cache import cache_buckets, updates_channel
from tests.integration.api_helpers import labelled, unique_brand

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api_url(stack, engine, tmp_path_factory):
    env = {**stack.env(), "API_ALERTS": "false", "METRICS_PORT": "0", "API_READ_TOKEN": "live-token"}
    child, base_url = start_api(env, tmp_path_factory.mktemp("api") / "api.log", free_port())
    yield base_url
    child.stop()


async def sse_events(response: httpx.Response):
    """(event, data) pairs from a text/event-stream response."""
    event, data = "message", []
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and data:
            yield event, json.loads("\n".join(data))
            event, data = "message", []


async def test_live_feed_delivers_sink_announcements(api_url, engine, redis, settings):
    brand = unique_brand("live")
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as client, client.stream(
            "GET", f"{api_url}/api/live", params={"brand": brand, "token": "live-token"}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        events = sse_events(response)
        assert await asyncio.wait_for(anext(events), 30) == ("status", {"live": True})

        buckets = await write_results(engine, labelled(brand, {"positive": 3}))
        await cache_buckets(redis, buckets, settings.store.redis_series_ttl_s)  # what the sink does after each commit
        other = await write_results(engine, labelled(unique_brand("other"), {"negative": 1}))
        await cache_buckets(redis, other, settings.store.redis_series_ttl_s)

        event, update = await asyncio.wait_for(anext(events), 30)
    assert event == "trend" and update["brand"] == brand  # only the brand subscribed to
    assert {b["granularity"] for b in update["buckets"]} == {"minute", "hour", "day"}
    assert all(b["positive"] >= 3 for b in update["buckets"])


async def test_live_feed_needs_the_token(api_url):
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{api_url}/api/live")).status_code == 401


class _OpenRequest:
    """The one thing `feed` asks of a request: whether the client left (never, here)."""

    async def is_disconnected(self) -> bool:
        return False


async def test_feed_survives_redis_down_and_keeps_retrying():
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    stream = feed(_OpenRequest(), dead, [updates_channel("acme")])
    try:
        assert await anext(stream) == "retry: 3000\n\n"
        for _ in range(2):  # reports the outage, backs off, tries again: no exception reaches the app
            chunk = await asyncio.wait_for(anext(stream), 30)
            assert chunk.startswith("event: status\n") and '"live": false' in chunk
    finally:
        await stream.aclose()
        await dead.aclose()
