"""The bare Jetstream reader of `monitor bench ingest` (`python -m benchmarks.ingest_reader URL LAST_TIME_US`):
frames read and parsed as JSON, nothing else, imported without the rest of the project so its cost is its own."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


async def read_until(url: str, last_time_us: int) -> int:
    """Read events until the one at `last_time_us`; returns how many were read."""
    read = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(url, max_msg_size=1 << 20) as socket:
        async for message in socket:
            read += 1
            if json.loads(message.data)["time_us"] >= last_time_us:
                break
    return read


if __name__ == "__main__":
    print(asyncio.run(read_until(sys.argv[1], int(sys.argv[2]))))
