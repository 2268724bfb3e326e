"""Faust's Kafka consumer, without four tasks per message and with a configurable fetch wait; its producer,
idempotent outside transactions too (`IdempotentProducer`).

Faust hands every fetched message to its app with `await consumer.wait_first(callback(message),
consumer.suspend_flow.wait())`: a race, so that a callback blocked on a full stream buffer lets go when a
rebalance suspends the flow. `wait_first` makes a task of each contender and of the consumer's stopped and
crashed flags (four per message), then runs an `asyncio.wait`. Almost every callback finishes in its first
step, because the buffer has room, and then the race only costs CPU per message (docs/performance.md, "What
profiling changed").

`EagerConsumer.wait_first` steps the first contender once, at once. A callback that finishes there returns
without any task: nothing else ran meanwhile, so no other contender could have won. A callback that has to wait
joins the same race as before, resumed where it stopped (`Suspended`).

Faust also fixes how long a fetch may wait for new messages. Apache Kafka answers a waiting fetch as soon as a
message arrives, so there the wait costs nothing; the embedded broker (Tansu) holds it for a share of the wait
even when messages arrive, which adds to every hop's latency (docs/performance.md, "End to end").
`FetchConfigConsumerThread` uses `CONSUMER_FETCH_WAIT_S` instead, and `CONSUMER_FETCH_MIN_BYTES` (Faust leaves
aiokafka's 1 byte): near a small host's capacity fewer, larger fetches leave the broker more CPU.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Generator
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver
from mode.services import WaitArgT, WaitResults
from mode.utils.times import Seconds


class Suspended(Awaitable[Any]):
    """A coroutine already stepped once and now waiting on `pending`: awaiting this finishes it.

    A task driving this waits on `pending` for the coroutine, then passes whatever it sends or throws
    (a result, a cancellation) on to it, as the task would have done had it stepped the coroutine itself."""

    __slots__ = ("coro", "pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                sent = yield pending
            except BaseException as exc:  # noqa: BLE001 - thrown in by the task: the coroutine must see it
                step, value = coro.throw, exc
            else:
                step, value = coro.send, sent
            try:
                pending = step(value)
            except StopIteration as stop:
                return stop.value


class FetchConfigConsumerThread(aiokafka_driver.AIOKafkaConsumerThread):
    """Faust's consumer thread, whose aiokafka consumer waits `App.fetch_wait_s` per fetch (Faust: 1.5 s) for at
    least `App.fetch_min_bytes`."""

    def _create_worker_consumer(self, transport: aiokafka_driver.Transport) -> AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes a fixed `fetch_max_wait_ms=1500`; aiokafka hands these attributes to its fetcher on `start`.
        consumer._fetch_max_wait_ms = round(self.app.fetch_wait_s * 1000)
        consumer._fetch_min_bytes = self.app.fetch_min_bytes
        return consumer


class EagerConsumer(aiokafka_driver.Consumer):
    """Faust's aiokafka consumer whose per-message race starts with one eager step of the callback."""

    def _new_consumer_thread(self) -> FetchConfigConsumerThread:
        return FetchConfigConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def wait_first(self, *coros: WaitArgT, timeout: Seconds | None = None) -> WaitResults:
        first, *others = coros
        if not asyncio.iscoroutine(first):
            return await super().wait_first(*coros, timeout=timeout)
        try:
            pending = first.send(None)
        except BaseException as exc:  # StopIteration: it finished in its first step; anything else: it raised
            for other in others:
                if asyncio.iscoroutine(other):
                    other.close()  # never started: closed, so it is not reported as never awaited
            if not isinstance(exc, StopIteration):
                raise
            if self._stopped.is_set() or self._crashed.is_set():
                return WaitResults([], [], True)  # as `wait_first` answers when the consumer stops
            return WaitResults([first], [exc.value], False)
        return await super().wait_first(Suspended(first, pending), *others, timeout=timeout)


class IdempotentProducer(aiokafka_driver.Producer):
    """Faust's producer, idempotent when its app asks for it. Faust turns idempotence on only inside
    transactions; the sink's and the worker's dead letters are sent outside any, so without this a send retried
    after a lost acknowledgement could be written twice."""

    def _settings_extra(self) -> dict[str, Any]:
        extra = dict(super()._settings_extra())
        if self.app.idempotent_producer:
            extra["enable_idempotence"] = True
        return extra


class EagerTransport(aiokafka_driver.Transport):
    Consumer = EagerConsumer
    Producer = IdempotentProducer


class App(faust.App):
    """A Faust app whose Kafka consumer is `EagerConsumer`, waiting at most `fetch_wait_s` per fetch for
    `fetch_min_bytes`, and whose producer is idempotent when `idempotent_producer` is set."""

    def __init__(self, id: str, *, fetch_wait_s: float, fetch_min_bytes: int = 1, idempotent_producer: bool = False,
                 **options: Any) -> None:
        super().__init__(id, **options)
        self.fetch_wait_s, self.fetch_min_bytes = fetch_wait_s, fetch_min_bytes
        self.idempotent_producer = idempotent_producer

    def _new_transport(self) -> EagerTransport:
        return EagerTransport(self.conf.broker_consumer, self)
