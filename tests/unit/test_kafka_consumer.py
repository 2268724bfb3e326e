"""The consumer `create_app` builds: Faust's per-message race with the callback's first step taken at once
(`EagerConsumer.wait_first`), and the configured fetch wait. Nothing here connects to a broker."""

import asyncio
import inspect

import pytest

from core.settings import Settings
from core.streaming.app import create_app
from core.streaming.faust_overrides import EagerConsumer


@pytest.fixture
async def consumer() -> EagerConsumer:
    """Made in the test's event loop: the consumer's race schedules its tasks on the loop it was made in."""
    consumer = create_app("eager-test", Settings(kafka_bootstrap="localhost:1", consumer_fetch_wait_s=0.05,
                                                  consumer_fetch_min_bytes=4096)).consumer
    assert isinstance(consumer, EagerConsumer)
    return consumer


async def test_a_callback_that_does_not_wait_runs_in_the_callers_task_and_no_race_is_started(consumer):
    ran_in = []

    async def callback() -> str:
        ran_in.append(asyncio.current_task())
        return "delivered"

    suspended = consumer.suspend_flow.wait()
    result = await consumer.wait_first(callback(), suspended)
    assert inspect.getcoroutinestate(suspended) == inspect.CORO_CLOSED  # not left to warn "never awaited"
    assert ran_in == [asyncio.current_task()]  # Faust's own race would have run it in a task of its own
    assert result.results == ["delivered"] and not result.stopped


async def test_a_callback_that_waits_is_resumed_and_finishes_in_the_race(consumer):
    room = asyncio.get_running_loop().create_future()
    steps = []

    async def callback() -> int:
        steps.append("first")
        value = await room  # a full stream buffer
        steps.append("resumed")
        return value + 1

    race = asyncio.ensure_future(consumer.wait_first(callback(), consumer.suspend_flow.wait()))
    await asyncio.sleep(0.01)
    assert steps == ["first"] and not race.done()
    room.set_result(41)
    result = await asyncio.wait_for(race, 1)
    assert steps == ["first", "resumed"] and result.results == [42] and not result.stopped


async def test_a_waiting_callback_is_cancelled_when_the_flow_is_suspended(consumer):
    """What the race is for: a rebalance suspends the flow while a callback waits for room."""
    cancelled = asyncio.Event()

    async def callback() -> None:
        try:
            await asyncio.get_running_loop().create_future()  # room that never comes
        except asyncio.CancelledError:
            cancelled.set()
            raise

    consumer.suspend_flow.clear()
    suspended = consumer.suspend_flow.wait()
    race = asyncio.ensure_future(consumer.wait_first(callback(), suspended))
    await asyncio.sleep(0.01)
    consumer.suspend_flow.set()
    result = await asyncio.wait_for(race, 1)
    assert result.done == [suspended] and not result.stopped
    await asyncio.wait_for(cancelled.wait(), 1)


@pytest.mark.parametrize("waits_first", [False, True])
async def test_a_callback_that_raises_raises_out_of_the_race(consumer, waits_first):
    async def callback() -> None:
        if waits_first:
            await asyncio.sleep(0)
        raise ValueError("a bug in the callback")

    suspended = consumer.suspend_flow.wait()
    with pytest.raises(ValueError, match="a bug in the callback"):
        await consumer.wait_first(callback(), suspended)
    if not waits_first:  # otherwise it ran in Faust's race, which cancels it
        assert inspect.getcoroutinestate(suspended) == inspect.CORO_CLOSED


async def test_the_aiokafka_consumer_waits_the_configured_time_and_bytes_per_fetch(consumer):
    """aiokafka hands `_fetch_max_wait_ms` and `_fetch_min_bytes` to its fetcher when the consumer starts; Faust
    would pass 1,500 and leave aiokafka's 1."""
    thread = consumer._thread
    kafka = thread._create_worker_consumer(thread.transport)
    assert (kafka._fetch_max_wait_ms, kafka._fetch_min_bytes) == (50, 4096)
