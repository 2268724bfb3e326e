"""A three-stage micro-batch pipeline: collect -> triage (parse, decode) -> score and deliver.

Faust's `take_events` processes one batch at a time: while the model scores batch N nothing decodes
batch N+1, and the model sits idle during every parse, decode and produce. Here the stages are
tasks joined by bounded queues, so batch N+1 is decoded on the thread pool while batch N is on the
model, and batch N+2 is being collected. Events are acked (their offsets become committable) only by
the last stage, in consumption order, after the broker acknowledged every result: a crash or a
SIGKILL anywhere redelivers, never skips. Memory is bounded by the queue sizes: a full inbox stops
the agent from pulling more events, and Faust stops fetching (backpressure). On a graceful stop the
events already pulled are finished (up to `DRAIN_TIMEOUT_S`) before the stages are cancelled.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from monitor.logging import get_logger

log = get_logger(__name__)

E = TypeVar("E")
T = TypeVar("T")

DRAIN_TIMEOUT_S = 30.0


class BatchPipeline(Generic[E, T]):
    """Feed it events; it calls `prepare(batch)` (a blocking function, run in a thread) and then
    `finish(batch, prepared)` (a coroutine, which must ack the batch) one batch after another."""

    def __init__(self, max_batch: int, max_wait_s: float, prepare: Callable[[Sequence[E]], T],
                 finish: Callable[[Sequence[E], T], Awaitable[None]]) -> None:
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.prepare, self.finish = prepare, finish
        self.inbox: asyncio.Queue[E] = asyncio.Queue(maxsize=max_batch)
        self.batches: asyncio.Queue[list[E]] = asyncio.Queue(maxsize=1)
        self.prepared: asyncio.Queue[tuple[list[E], T]] = asyncio.Queue(maxsize=1)
        self.in_flight = 0
        """Events taken from the inbox whose batch is not finished yet."""

    async def run(self, events: AsyncIterable[E]) -> None:
        """Consume `events` until cancelled; a failing stage (a bug, a broker that refuses results) is raised
        here, so the agent crashes loudly instead of stalling with a full inbox."""
        stages = [asyncio.create_task(stage(), name=f"batch-{stage.__name__}")
                  for stage in (self._collect, self._prepare, self._finish)]
        feeder = asyncio.create_task(self._feed(events), name="batch-feed")
        waits = [feeder, *stages]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises the stage's exception
            if feeder.done():  # a finite source ended: finish its events, then return
                waits.append(asyncio.create_task(self._drained()))
                done, _ = await asyncio.wait([waits[-1], *stages], return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        except asyncio.CancelledError:
            feeder.cancel()
            try:
                await asyncio.wait_for(self._drained(), DRAIN_TIMEOUT_S)
                log.info("in-flight batches finished before stopping")
            except TimeoutError:
                log.warning("in-flight batches not finished in time; they will be redelivered",
                            events=self.in_flight + self.inbox.qsize())
            raise
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    async def _feed(self, events: AsyncIterable[E]) -> None:
        async for event in events:
            await self.inbox.put(event)

    async def _drained(self) -> None:
        while self.in_flight or not self.inbox.empty():
            await asyncio.sleep(0.02)

    async def _collect(self) -> None:
        """A batch closes at `max_batch` events or `max_wait_s` after its first event."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.inbox.get()]
            self.in_flight += 1
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self.inbox.get(), remaining))
                    self.in_flight += 1
                except TimeoutError:
                    break
            await self.batches.put(batch)

    async def _prepare(self) -> None:
        while True:
            batch = await self.batches.get()
            await self.prepared.put((batch, await asyncio.to_thread(self.prepare, batch)))

    async def _finish(self) -> None:
        while True:
            batch, prepared = await self.prepared.get()
            await self.finish(batch, prepared)
            self.in_flight -= len(batch)
