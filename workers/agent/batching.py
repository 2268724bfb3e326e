"""A staged micro-batch pipeline: collect -> stage 1 -> stage 2 -> ... -> last stage (which acks).

Faust's `take_events` processes one batch at a time: while the model scores batch N nothing decodes
batch N+1, and the model sits idle during every parse, decode and produce round trip. Here every
stage is a task and stages are joined by bounded queues, so the worker decodes batch N+2 on its
thread pool while the model scores batch N+1 and batch N's results wait for the broker's
acknowledgement. Each stage handles one batch at a time, in order, so events are acked (their
offsets become committable) in consumption order, by the last stage, after the broker acknowledged
every result: a crash or a SIGKILL anywhere redelivers, never skips. Memory is bounded by the queue
sizes: a full inbox stops the agent from pulling more events, and Faust stops fetching
(backpressure). On a graceful stop the events already pulled are finished (up to
`DRAIN_TIMEOUT_S`) before the stages are cancelled.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterable, Callable, Sequence
from typing import Any, Generic, TypeVar

from core.logging import get_logger

log = get_logger(__name__)

E = TypeVar("E")

DRAIN_TIMEOUT_S = 30.0
CANCEL_TIMEOUT_S = 2.0

Stage = Callable[[Sequence[Any], Any], Any]
"""`stage(batch, previous stage's output)` (the first stage gets None). A plain function runs in a thread
(blocking work: decoding, the model); a coroutine function runs on the event loop (I/O)."""

StageTiming = Callable[[str, float, float], None]
"""`on_timing(stage name, busy seconds, blocked seconds)` after each batch a stage hands on: busy is the stage's
own work, blocked the wait for the next stage to take the batch. A stage busy nearly all the time is the
pipeline's bottleneck; one mostly blocked waits on a slower stage after it."""


class BatchPipeline(Generic[E]):
    """Feed it events; every batch passes through `stages` in order. The last stage must ack the batch."""

    def __init__(self, max_batch: int, max_wait_s: float, stages: Sequence[Stage],
                 on_timing: StageTiming | None = None) -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.stages = list(stages)
        self.on_timing = on_timing
        self.inbox: asyncio.Queue[E] = asyncio.Queue(maxsize=max_batch)
        # queues[i] feeds stage i: (batch, output of stage i-1)
        self.queues: list[asyncio.Queue[tuple[list[E], Any]]] = [asyncio.Queue(maxsize=1) for _ in self.stages]
        self.in_flight = 0
        """Events taken from the inbox whose batch has not left the last stage yet."""

    async def run(self, events: AsyncIterable[E]) -> None:
        """Consume `events` until cancelled, or until a finite source is exhausted and drained. A failing
        stage (a bug, a broker that refuses results) is raised here, so the agent crashes loudly instead
        of stalling with a full inbox."""
        workers = [asyncio.create_task(self._collect(), name="batch-collect")]
        workers += [asyncio.create_task(self._stage(i), name=f"batch-stage-{i}") for i in range(len(self.stages))]
        feeder = asyncio.create_task(self._feed(events), name="batch-feed")
        waits = [feeder, *workers]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raises the stage's exception
            if feeder.done():  # a finite source ended: finish its events, then return
                waits.append(asyncio.create_task(self._drained()))
                done, _ = await asyncio.wait([waits[-1], *workers], return_when=asyncio.FIRST_COMPLETED)
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
            # The stages stop at once. The feeder may not: cancelled while it waits for Faust's next event, the
            # stream's generator runs `Stream.stop()` in its `finally`, a shutdown this pipeline does not control
            # (a worker was once seen alive and stuck after its model process died). A failing stage's exception
            # must reach the agent whatever the source does.
            done, stuck = await asyncio.wait(waits, timeout=CANCEL_TIMEOUT_S)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieved: asyncio would log it as never retrieved
            if stuck:
                log.warning("pipeline tasks still stopping; not waiting for them", tasks=[t.get_name() for t in stuck])

    async def _feed(self, events: AsyncIterable[E]) -> None:
        async for event in events:
            await self.inbox.put(event)

    async def _drained(self) -> None:
        while self.in_flight or not self.inbox.empty():
            await asyncio.sleep(0.02)

    async def _collect(self) -> None:
        """A batch closes at `max_batch` events or `max_wait_s` after its first event. Events already in the
        inbox are taken without waiting: `wait_for` costs a task and a timer per call, and under a backlog
        the inbox is full whenever this runs."""
        loop = asyncio.get_running_loop()
        inbox = self.inbox
        while True:
            batch = [await inbox.get()]
            self.in_flight += 1
            deadline = loop.time() + self.max_wait_s
            while len(batch) < self.max_batch:
                if inbox.empty():
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        batch.append(await asyncio.wait_for(inbox.get(), remaining))
                    except TimeoutError:
                        break
                else:
                    batch.append(inbox.get_nowait())
                self.in_flight += 1
            await self.queues[0].put((batch, None))

    async def _stage(self, index: int) -> None:
        stage, last = self.stages[index], index == len(self.stages) - 1
        blocking = not inspect.iscoroutinefunction(stage)
        clock = asyncio.get_running_loop().time
        while True:
            batch, previous = await self.queues[index].get()
            started = clock()
            output = await asyncio.to_thread(stage, batch, previous) if blocking else await stage(batch, previous)
            done = clock()
            if last:
                self.in_flight -= len(batch)
            else:
                await self.queues[index + 1].put((batch, output))
            if self.on_timing is not None:
                self.on_timing(stage.__name__, done - started, clock() - done)
