"""Trend series for dashboards and the API: Redis when it is warm, PostgreSQL otherwise.

Redis down (connection refused, timeouts) or cold (restarted, evicted, never loaded) never
fails a read: the reader answers from PostgreSQL, and on a cold read it repopulates the
brand's hot window so the next read is served from Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.logging import get_logger
from monitor.store.cache import HOT_WINDOWS, cache_buckets, cached_series, hot_since, is_warm, mark_warm
from monitor.store.trends import read_trends
from schemas import TrendBucket

log = get_logger(__name__)


@dataclass(frozen=True)
class SeriesRead:
    buckets: list[TrendBucket]
    source: str  # "redis" or "postgres"


class TrendReader:
    """Serves one brand's series at a granularity over [since, until), from the fastest complete source."""

    def __init__(self, engine: AsyncEngine, redis: Redis, series_ttl_s: int) -> None:
        self.engine, self.redis, self.series_ttl_s = engine, redis, series_ttl_s

    async def series(self, brand: str, granularity: str = "minute", since: datetime | None = None,
                     until: datetime | None = None) -> list[TrendBucket]:
        return (await self.read(brand, granularity, since, until)).buckets

    async def read(self, brand: str, granularity: str = "minute", since: datetime | None = None,
                   until: datetime | None = None, now: datetime | None = None) -> SeriesRead:
        """`since` defaults to the start of the hot window (minute: 24 h, hour: 30 days, day: 400 days)."""
        brand, now = brand.lower(), now or datetime.now(UTC)
        if granularity not in HOT_WINDOWS:
            raise ValueError(f"granularity must be one of {', '.join(HOT_WINDOWS)}")
        window_start = hot_since(granularity, now)
        since = since or window_start
        if since < window_start:  # older than Redis keeps: only PostgreSQL has it
            return SeriesRead(await read_trends(self.engine, brand, granularity, since, until), "postgres")
        try:
            if await is_warm(self.redis, brand, granularity):
                return SeriesRead(await cached_series(self.redis, brand, granularity, since, until), "redis")
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, reading PostgreSQL", brand=brand, error=str(exc))
            return SeriesRead(await read_trends(self.engine, brand, granularity, since, until), "postgres")
        window = await read_trends(self.engine, brand, granularity, since=window_start)
        await self._repopulate(brand, granularity, window, now)
        wanted = [b for b in window if b.bucket_start >= since and (until is None or b.bucket_start < until)]
        return SeriesRead(wanted, "postgres")

    async def _repopulate(self, brand: str, granularity: str, window: list[TrendBucket], now: datetime) -> None:
        """Load the whole hot window, then mark it warm (a sink may write newer totals meanwhile: the newer wins)."""
        try:
            await cache_buckets(self.redis, window, self.series_ttl_s, now=now, announce=False)
            await mark_warm(self.redis, brand, granularity)
            log.info("redis series repopulated", brand=brand, granularity=granularity, buckets=len(window))
        except (RedisError, OSError) as exc:
            log.warning("redis repopulation skipped", brand=brand, error=str(exc))
