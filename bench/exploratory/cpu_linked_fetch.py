# Ran on the 2-core VM, 2026-11-26: python bench/exploratory/cpu_linked_fetch.py
"""What fetching linked images costs the worker's process: CPU ms per image of `ImageFetcher.fetch_all` (on the
event loop), batches of 32 of the benchmarks' 224 px sample photos from an HTTP server in another process on this
machine (its CPU is not counted), next to decoding the same images (`decode_image`, on the decode threads)."""
import asyncio
import json
import statistics
import time

from benchmarks.image_server import image_server
from monitor.devstack.samples import sample_images
from workers.agent.image_fetch import ImageFetcher
from workers.media.images import decode_image

BATCH = 32
BATCHES = 60
ROUNDS = 5


async def fetch_ms_per_image(fetcher: ImageFetcher, base: str) -> float:
    started = time.process_time()
    for batch in range(BATCHES):
        got = await fetcher.fetch_all([f"{base}/{batch * BATCH + i}.jpg" for i in range(BATCH)])
        assert all(isinstance(body, bytes) for body in got), got[:1]
    return (time.process_time() - started) * 1000 / (BATCH * BATCHES)


def decode_ms_per_image() -> float:
    images = sample_images()
    started = time.process_time()
    for i in range(BATCH * BATCHES):
        decode_image(images[i % len(images)], 224, 10**8)
    return (time.process_time() - started) * 1000 / (BATCH * BATCHES)


async def main() -> None:
    fetcher = ImageFetcher(timeout_s=10, max_bytes=8 << 20, concurrency=32, private_hosts=True)
    try:
        with image_server() as base:
            rounds = [(await fetch_ms_per_image(fetcher, base), decode_ms_per_image()) for _ in range(ROUNDS)]
    finally:
        await fetcher.close()
    fetch, decode = statistics.median(r[0] for r in rounds), statistics.median(r[1] for r in rounds)
    print(json.dumps({"batch": BATCH, "fetch_ms_per_image": round(fetch, 3),
                      "decode_ms_per_image_224": round(decode, 3), "fetch_over_decode": round(fetch / decode, 2)}))


asyncio.run(main())
