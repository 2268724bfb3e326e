"""Redis: hot trend series for dashboards, and a pub/sub channel per brand announcing updates.

Layout: one sorted set per brand and granularity (`trend:{granularity}:{brand}`), scored by
bucket start (epoch seconds), each member a `TrendBucket` JSON with absolute totals read
back from PostgreSQL. Only the hot window is kept (minute: 24 h, hour: 30 days, day: 400
days). Writes go through a Lua script that keeps whichever snapshot of a bucket is newer by
`changes` = volume + 2 x removed: a new post adds one to the volume, a deleted one takes one
off the volume and adds one to `removed`, so every change of a bucket raises it. Two sinks (or
a sink and a reader repopulating) writing out of order can therefore never move the cache
backwards, and a repeated write is harmless.

A series is only *warm* (complete for its window) after a reader loaded it from PostgreSQL
and set `trend-warm:{granularity}:{brand}`; write-through alone never marks it warm, so a
Redis restart (no persistence) shows up as cold and readers repopulate it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from schemas import TrendBucket

HOT_WINDOWS: dict[str, timedelta] = {
    "minute": timedelta(hours=24),
    "hour": timedelta(days=30),
    "day": timedelta(days=400),
}
WARM_TTL_S = 3600
"""How long a loaded series counts as complete; after that a reader re-syncs it from PostgreSQL."""

_WRITE_MAX = """
local key = KEYS[1]
local written = 0
local function changes(b) return b.negative + b.neutral + b.positive + 2 * (b.removed or 0) end
for i = 3, #ARGV, 2 do
  local score, member = ARGV[i], ARGV[i + 1]
  local new = cjson.decode(member)
  local newer = true
  for _, old in ipairs(redis.call('ZRANGEBYSCORE', key, score, score)) do
    if changes(cjson.decode(old)) > changes(new) then newer = false end
  end
  if newer then
    redis.call('ZREMRANGEBYSCORE', key, score, score)
    redis.call('ZADD', key, score, member)
    written = written + 1
  end
end
redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. ARGV[2])
if redis.call('EXISTS', key) == 1 then redis.call('EXPIRE', key, ARGV[1]) end
return written
"""


def series_key(brand: str, granularity: str) -> str:
    return f"trend:{granularity}:{brand}"


def warm_key(brand: str, granularity: str) -> str:
    return f"trend-warm:{granularity}:{brand}"


def updates_channel(brand: str) -> str:
    return f"trend-updates:{brand}"


def hot_since(granularity: str, now: datetime | None = None) -> datetime:
    """Start of the window Redis keeps for this granularity."""
    return (now or datetime.now(UTC)) - HOT_WINDOWS[granularity]


def _score(moment: datetime) -> int:
    return int(moment.timestamp())


def series_ttl_s(granularity: str, min_ttl_s: int) -> int:
    return max(int(HOT_WINDOWS[granularity].total_seconds()), min_ttl_s)


async def cache_buckets(redis: Redis, buckets: Sequence[TrendBucket], ttl_s: int, now: datetime | None = None,
                        announce: bool = True) -> int:
    """Write the hot buckets into their series and announce each brand's changes; returns buckets written."""
    if not buckets:
        return 0
    now = now or datetime.now(UTC)
    per_series: dict[tuple[str, str], list[TrendBucket]] = defaultdict(list)
    for bucket in buckets:
        if bucket.granularity in HOT_WINDOWS and bucket.bucket_start >= hot_since(bucket.granularity, now):
            per_series[(bucket.brand, bucket.granularity)].append(bucket)
    script = redis.register_script(_WRITE_MAX)
    async with redis.pipeline(transaction=False) as pipe:
        for (brand, granularity), series in per_series.items():
            args: list = [series_ttl_s(granularity, ttl_s), _score(hot_since(granularity, now))]
            for bucket in series:
                args += [_score(bucket.bucket_start), bucket.model_dump_json()]
            await script(keys=[series_key(brand, granularity)], args=args, client=pipe)
        if announce:
            for brand, changed in _by_brand(buckets).items():
                pipe.publish(updates_channel(brand), _announcement(brand, changed))
        await pipe.execute()
    return sum(len(series) for series in per_series.values())


def _by_brand(buckets: Iterable[TrendBucket]) -> dict[str, list[TrendBucket]]:
    grouped: dict[str, list[TrendBucket]] = defaultdict(list)
    for bucket in buckets:
        grouped[bucket.brand].append(bucket)
    return grouped


def _announcement(brand: str, buckets: list[TrendBucket]) -> str:
    """One message per brand and batch: the changed buckets with their new totals."""
    return json.dumps({"brand": brand, "buckets": [b.model_dump(mode="json") for b in buckets]})


async def cached_series(redis: Redis, brand: str, granularity: str = "minute", since: datetime | None = None,
                        until: datetime | None = None) -> list[TrendBucket]:
    """Cached buckets with since <= bucket_start < until, oldest first (whatever is there: warm or not)."""
    low = _score(since) if since else "-inf"
    high = f"({_score(until)}" if until else "+inf"
    raw = await redis.zrangebyscore(series_key(brand, granularity), low, high)
    return [TrendBucket.model_validate_json(member) for member in raw]


async def mark_warm(redis: Redis, brand: str, granularity: str, ttl_s: int = WARM_TTL_S) -> None:
    await redis.set(warm_key(brand, granularity), "1", ex=ttl_s)


async def is_warm(redis: Redis, brand: str, granularity: str) -> bool:
    return bool(await redis.exists(warm_key(brand, granularity)))
