"""Live updates as Server-Sent Events, fed by the Redis pub/sub channels `trend-updates:{brand}`.

A Redis outage never ends the stream or the app: the feed reports `status` (live false),
retries with backoff, and says `live: true` again once resubscribed, so the page refetches
whatever it missed. Comment lines keep idle connections open through proxies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.logging import get_logger
from monitor.api.auth import require_read_or_query_token
from monitor.api.errors import COMMON, single_valued_query
from monitor.api.routes_read import brand_name
from monitor.api.state import ApiState, get_state
from monitor.store.cache import updates_channel
from monitor.store.text import stored_text

log = get_logger(__name__)

router = APIRouter(prefix="/api")

LiveBrand = stored_text(max_length=64)
EVENT_SCHEMA = {"type": "object", "required": ["event", "data"], "properties": {
    "event": {"type": "string", "enum": ["status", "trend"]},
    "data": {"type": "string", "description": "JSON: `{live, error?, retry_s?}` or `{brand, buckets}`"}}}
"""One server-sent event, as OpenAPI tools read a stream."""
HEARTBEAT_S = 15.0
MAX_BACKOFF_S = 10.0
ALL_BRANDS = updates_channel("*")


def sse(event: str, data: dict | str) -> str:
    body = data if isinstance(data, str) else json.dumps(data)
    return f"event: {event}\n" + "".join(f"data: {line}\n" for line in body.splitlines()) + "\n"


async def feed(request: Request, redis: Redis, channels: list[str], heartbeat_s: float = HEARTBEAT_S
               ) -> AsyncIterator[str]:
    yield "retry: 3000\n\n"
    backoff = 0.5
    while not await request.is_disconnected():
        pubsub = redis.pubsub(ignore_subscribe_messages=True)
        try:
            if channels:
                await pubsub.subscribe(*channels)
            else:
                await pubsub.psubscribe(ALL_BRANDS)
            yield sse("status", {"live": True})
            backoff, quiet_since = 0.5, time.monotonic()
            while not await request.is_disconnected():
                message = await pubsub.get_message(timeout=1.0)
                if message and message.get("type") in ("message", "pmessage"):
                    data = message["data"]
                    yield sse("trend", data.decode() if isinstance(data, bytes) else str(data))
                    quiet_since = time.monotonic()
                elif time.monotonic() - quiet_since >= heartbeat_s:
                    yield ": ping\n\n"
                    quiet_since = time.monotonic()
        except (RedisError, OSError) as exc:
            log.warning("live feed: redis unavailable, retrying", error=str(exc) or type(exc).__name__,
                        retry_s=backoff)
            yield sse("status", {"live": False, "error": "redis unavailable", "retry_s": backoff})
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()


@router.get("/live", dependencies=[Depends(require_read_or_query_token), Depends(single_valued_query)],
            summary="Live trend updates (SSE)",
            response_class=StreamingResponse, responses={
                **COMMON, 200: {"content": {"text/event-stream": {"schema": EVENT_SCHEMA}},
                                "description": "The event stream: `status` and `trend` events"}})
async def live(request: Request,
               brand: Annotated[list[LiveBrand], Query(max_length=50)] = [],  # noqa: B006
               state: ApiState = Depends(get_state)) -> StreamingResponse:
    """`text/event-stream`: `trend` events carry `{"brand", "buckets": [TrendBucket...]}` as the sink announces
    them; `status` events say whether the feed is live. No `brand` = every brand. EventSource cannot send
    headers, so `?token=` is accepted here."""
    channels = sorted({updates_channel(brand_name(b, ("query", "brand"))) for b in brand})
    return StreamingResponse(feed(request, state.live_redis, channels), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
