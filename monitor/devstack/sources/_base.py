"""What the replay servers share: an aiohttp app on a free local port, a release log, sample texts and JPEGs."""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import Sequence
from functools import lru_cache
from types import TracebackType
from typing import Generic, Self, TypeVar

from aiohttp import web
from PIL import Image, ImageDraw

from core.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")

# Sample post texts per language: the connectors' language and brand handling sees more than English.
TEXTS: dict[str, tuple[str, ...]] = {
    "en": ("I absolutely love my new {b} phone, best purchase this year!",
           "{b} support is terrible, still waiting after two weeks",
           "Picked up a {b} charger at the store this afternoon",
           "Worst update ever, my {b} app keeps crashing. Awful.",
           "Great service from {b} today, thank you so much",
           "Does anyone know when the {b} store opens?"),
    "de": ("Ich liebe mein neues {b} Handy, bester Kauf des Jahres!",
           "Der {b} Kundendienst ist furchtbar, ich warte seit zwei Wochen"),
    "fr": ("J'adore mon nouveau téléphone {b}, le meilleur achat de l'année !",
           "Le service client de {b} est horrible, j'attends depuis deux semaines"),
    "es": ("Me encanta mi nuevo teléfono {b}, ¡la mejor compra del año!",
           "El soporte de {b} es terrible, sigo esperando después de dos semanas"),
    "ja": ("{b}の新しいスマホが大好き、今年一番の買い物！",),
}
OTHER_LANGS: tuple[str, ...] = tuple(lang for lang in TEXTS if lang != "en")


@lru_cache(maxsize=512)
def sample_jpeg(key: str, size: int = 64) -> bytes:
    """A small valid JPEG whose colour derives from `key`: the same URL always serves the same bytes."""
    digest = hashlib.sha256(key.encode()).digest()
    image = Image.new("RGB", (size, size), (digest[0], digest[1], digest[2]))
    ImageDraw.Draw(image).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4),
                                    fill=(digest[3], digest[4], digest[5]))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


class LocalServer:
    """An aiohttp application on 127.0.0.1, port chosen by the OS, for one `async with` block.

    Subclasses add routes in `_routes`. Open streaming responses are tracked so `drop_all` can cut them like a
    network failure would (transport aborted, no close frame, no final chunk).
    """

    name = "server"

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._open: set[asyncio.Transport] = set()  # transports of open streams

    @property
    def url(self) -> str:
        """Base URL, `http://127.0.0.1:<port>`; only while started."""
        if self._url is None:
            raise RuntimeError(f"{type(self).__name__} is not started: use `async with`")
        return self._url

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        self._routes(app)
        # handler_cancellation: a client that goes away cancels its stream handler instead of leaving it waiting.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self._url = f"http://127.0.0.1:{port}"
        log.info("replay server started", server=self.name, url=self._url)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self.drop_all()
            await self._runner.cleanup()
            log.info("replay server stopped", server=self.name, url=self._url)
        self._runner, self._url = None, None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def _track(self, request: web.Request) -> None:
        if request.transport is not None:
            self._open.add(request.transport)

    def _untrack(self, request: web.Request) -> None:
        if request.transport is not None:
            self._open.discard(request.transport)

    async def drop_all(self) -> int:
        """Abort every open streaming connection, as a network failure would; returns how many were cut."""
        dropped = 0
        for transport in list(self._open):
            if not transport.is_closing():
                transport.abort()
                dropped += 1
        self._open.clear()
        if dropped:
            log.info("replay server dropped connections", server=self.name, count=dropped)
        await asyncio.sleep(0)
        return dropped


class ReleaseLog(Generic[T]):
    """The replay list and how much of it has "happened": live subscribers see only what is released later.

    Real streams are live: a subscriber without a cursor gets what happens after it connects. Tests decide when
    things happen with `release(n)` / `release_all()`; waiting subscribers wake on each release.
    """

    def __init__(self, items: Sequence[T]) -> None:
        self.items: list[T] = list(items)
        self.released = 0
        self._changed = asyncio.Event()

    def append(self, items: Sequence[T]) -> None:
        """More unreleased items at the end of the list (items whose URLs need the started server's address)."""
        self.items.extend(items)

    def release(self, n: int = 1) -> int:
        """Make the next `n` items happen (fewer if the list runs out); returns how many were released."""
        if n < 0:
            raise ValueError("n must be >= 0")
        before = self.released
        self.released = min(len(self.items), self.released + n)
        self._wake()
        return self.released - before

    def release_all(self) -> int:
        return self.release(len(self.items) - self.released)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_beyond(self, position: int, timeout: float | None = None) -> bool:
        """Wait until more than `position` items are released; False on timeout."""
        while self.released <= position:
            event = self._changed
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                return self.released > position
        return True


class ReplayServer(LocalServer, Generic[T]):
    """A local server replaying a held list of events that tests release step by step (`ReleaseLog`)."""

    def __init__(self, items: Sequence[T]) -> None:
        super().__init__()
        self._log: ReleaseLog[T] = ReleaseLog(items)

    @property
    def released(self) -> int:
        return self._log.released

    def release(self, n: int = 1) -> int:
        """The next `n` items happen now: live subscribers receive them (and timelines show them)."""
        return self._log.release(n)

    def release_all(self) -> int:
        return self._log.release_all()

    def append(self, items: Sequence[T]) -> None:
        """More (unreleased) items at the end of the list."""
        self._log.append(items)
