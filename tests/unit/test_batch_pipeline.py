"""BatchPipeline: size and latency caps, batches finished in order, failures raised, drain on cancel."""

import asyncio
import threading

import pytest

from workers.agent.batching import BatchPipeline


async def source(items, hold_open=False):
    for item in items:
        yield item
    if hold_open:  # like a Kafka stream: never ends by itself
        await asyncio.Event().wait()


def recorder():
    finished: list[list[int]] = []

    async def finish(batch, prepared):
        assert prepared == [x * 10 for x in batch]
        finished.append(list(batch))

    return finished, finish


def times_ten(batch, _previous):
    return [x * 10 for x in batch]


async def test_full_batches_in_order_and_a_partial_one_after_the_wait():
    finished, finish = recorder()
    pipeline = BatchPipeline(4, 0.05, [times_ten, finish])
    await asyncio.wait_for(pipeline.run(source(range(10))), 5)  # a finite source: returns once all are done
    assert [x for batch in finished for x in batch] == list(range(10))  # consumption order kept
    assert all(len(batch) <= 4 for batch in finished)
    assert finished[-1] == [8, 9]  # closed by the latency cap, not by size


async def test_prepare_runs_off_the_event_loop():
    threads = set()
    finished, finish = recorder()

    def prepare(batch, previous):
        threads.add(threading.get_ident())
        return times_ten(batch, previous)

    await asyncio.wait_for(BatchPipeline(2, 0.01, [prepare, finish]).run(source(range(4))), 5)
    assert len(finished) == 2
    assert threading.get_ident() not in threads


async def test_a_failing_stage_is_raised():
    async def finish(batch, prepared):
        raise RuntimeError("broker refused")

    pipeline = BatchPipeline(2, 0.01, [lambda batch, _: list(batch), finish])
    with pytest.raises(RuntimeError, match="broker refused"):
        await asyncio.wait_for(pipeline.run(source(range(3))), 5)


async def test_cancel_finishes_what_was_already_pulled():
    finished, finish = recorder()

    async def slow_finish(batch, prepared):
        await asyncio.sleep(0.05)
        await finish(batch, prepared)

    pipeline = BatchPipeline(3, 0.01, [times_ten, slow_finish])
    task = asyncio.create_task(pipeline.run(source(range(9), hold_open=True)))
    while pipeline.in_flight == 0:
        await asyncio.sleep(0.001)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pulled = sum(map(len, finished))
    assert pulled >= 1 and pipeline.in_flight == 0 and pipeline.inbox.empty()
    assert [x for batch in finished for x in batch] == list(range(pulled))


async def test_stages_overlap_on_different_batches():
    """While one batch waits in the last stage (a produce round trip), the middle stage starts the next."""
    release = asyncio.Event()
    started: list[int] = []
    finished, finish = recorder()

    def middle(batch, previous):
        started.append(batch[0])
        return previous

    async def slow_last(batch, prepared):
        if batch[0] == 0:
            await release.wait()
        await finish(batch, prepared)

    task = asyncio.create_task(BatchPipeline(1, 0.01, [times_ten, middle, slow_last]).run(source(range(3))))
    while len(started) < 2:  # batch 1 reached the middle stage while batch 0 is still held in the last one
        await asyncio.sleep(0.005)
    assert finished == []
    release.set()
    await asyncio.wait_for(task, 5)
    assert finished == [[0], [1], [2]]


async def test_a_failing_stage_is_raised_even_when_the_source_will_not_stop():
    """Faust's stream generator awaits `Stream.stop()` in its `finally`, which can wait on the crashing agent
    itself: the stage's exception must still reach the agent (and crash the worker) promptly."""
    async def stubborn_source():
        try:
            for item in range(3):
                yield item
            await asyncio.Event().wait()  # waiting for the next event when the stage fails
        finally:
            await asyncio.Event().wait()  # a stop that does not finish

    def model_gone(batch, _previous):
        raise RuntimeError("the model process exited")

    pipeline = BatchPipeline(3, 0.01, [model_gone])
    with pytest.raises(RuntimeError, match="model process exited"):
        await asyncio.wait_for(pipeline.run(stubborn_source()), 10)


async def test_each_stage_reports_its_busy_and_blocked_time_per_batch():
    """A slow last stage shows as busy; the fast stage before it shows as blocked behind it."""
    timings: list[tuple[str, float, float]] = []

    async def slow_finish(batch, _previous):
        await asyncio.sleep(0.05)

    pipeline = BatchPipeline(1, 0.01, [times_ten, slow_finish], lambda *timing: timings.append(timing))
    await asyncio.wait_for(pipeline.run(source(range(4))), 5)
    by_stage = {name: [t for t in timings if t[0] == name] for name in ("times_ten", "slow_finish")}
    assert len(by_stage["times_ten"]) == len(by_stage["slow_finish"]) == 4  # one report per batch and stage
    assert all(busy >= 0.045 and blocked < 0.01 for _, busy, blocked in by_stage["slow_finish"])
    assert sum(blocked for _, _, blocked in by_stage["times_ten"]) >= 0.05  # waited for slow_finish to take batches
