"""An HTTP server of the benchmarks' sample photos, in a process of its own, for posts that link to their images.

`GET /<n>.jpg` answers sample photo n modulo their count, `latency_ms` after the request: every post can link
to a URL of its own (no cache could hide the fetch), a CDN's distance can be played, and the server's CPU is
not counted as the worker's. Run as `python -m benchmarks.image_server PORT [LATENCY_MS]`.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

from core.process import free_port

READY_TIMEOUT_S = 30.0


@contextlib.contextmanager
def image_server(latency_ms: float = 0.0) -> Iterator[str]:
    """The base URL (`http://127.0.0.1:<port>`) of a sample-photo server running for the block's lifetime."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "benchmarks.image_server", str(port), str(latency_ms)],
                              stdin=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{base}/0.jpg", timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the image server did not start (exit code {server.poll()})") from None
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        server.wait(10)


def serve(port: int, latency_ms: float = 0.0) -> None:
    import asyncio

    from aiohttp import web

    from monitor.devstack.samples import sample_images

    images = sample_images()

    async def photo(request: web.Request) -> web.Response:
        if latency_ms:
            await asyncio.sleep(latency_ms / 1000)
        return web.Response(body=images[int(request.match_info["n"]) % len(images)], content_type="image/jpeg")

    app = web.Application()
    app.router.add_get(r"/{n:\d+}.jpg", photo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    serve(int(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
