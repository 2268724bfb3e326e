"""What every request needs, created once per process in the app's lifespan: settings, engine, Redis, reader."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from core.settings import Settings
from monitor.store.db import create_engine
from monitor.store.trend_reader import TrendReader

REDIS_TIMEOUT_S = 2.0
"""Short socket timeouts: a Redis outage must cost a request two seconds at most, then PostgreSQL answers."""


@dataclass
class ApiState:
    settings: Settings
    engine: AsyncEngine
    redis: Redis
    live_redis: Redis
    """Pub/sub client for the live feed: no read timeout (a subscription is idle most of the time)."""
    reader: TrendReader

    @classmethod
    def open(cls, settings: Settings) -> ApiState:
        if not settings.store.database_url or not settings.store.redis_url:
            raise RuntimeError("DATABASE_URL and REDIS_URL must be set for the API (`monitor demo` sets them)")
        engine = create_engine(settings.store.database_url)
        redis = Redis.from_url(settings.store.redis_url, socket_timeout=REDIS_TIMEOUT_S,
                               socket_connect_timeout=REDIS_TIMEOUT_S, health_check_interval=30)
        live_redis = Redis.from_url(settings.store.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S,
                                    socket_keepalive=True)
        return cls(settings, engine, redis, live_redis, TrendReader(engine, redis, settings.store.redis_series_ttl_s))

    async def close(self) -> None:
        await self.redis.aclose()
        await self.live_redis.aclose()
        await self.engine.dispose()


def get_state(request: Request) -> ApiState:
    return request.app.state.api
