"""Redis: the hot trend series dashboards read, and a pub/sub channel per brand for live updates.

Buckets are written with their absolute totals from PostgreSQL (not increments), so a
retried or repeated write leaves the cache correct.
"""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from schemas import TrendBucket


def series_key(brand: str, granularity: str) -> str:
    return f"trend:{granularity}:{brand}"


def updates_channel(brand: str) -> str:
    return f"trend-updates:{brand}"


async def cache_buckets(redis: Redis, buckets: Sequence[TrendBucket], ttl_s: int) -> None:
    """Write each bucket into its brand's series hash and announce the change."""
    if not buckets:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for bucket in buckets:
            key = series_key(bucket.brand, bucket.granularity)
            pipe.hset(key, bucket.bucket_start.isoformat(), bucket.model_dump_json())
            pipe.expire(key, ttl_s)
            pipe.publish(updates_channel(bucket.brand), bucket.model_dump_json())
        await pipe.execute()


async def cached_series(redis: Redis, brand: str, granularity: str = "minute") -> list[TrendBucket]:
    raw = await redis.hgetall(series_key(brand, granularity))
    return sorted((TrendBucket.model_validate_json(v) for v in raw.values()), key=lambda b: b.bucket_start)
