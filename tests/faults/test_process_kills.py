"""SIGKILL of a worker mid-batch, of its model process, and of the sink mid-transaction: restarted, nothing
lost, nothing counted twice.

A killed process never finishes its batch or commits its offsets, so the broker redelivers what it
had in flight: the worker scores those posts again (duplicate results on `sentiment`) and the sink
sees results whose PostgreSQL transaction was rolled back, or committed but not acked.
"""

from __future__ import annotations

import asyncio

import psutil
import pytest
from sqlalchemy import text

from monitor.devstack.samples import sample_posts
from schemas import DeadLetter
from tests.faults.helpers import (
    WARM_UP,
    ProgressProbe,
    assert_counted_once,
    drain,
    post_messages,
    produce,
    read_all,
    start_warm,
    stored_ids,
    times_scored,
    wait_stored,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

POSTS = 240
IN_FLIGHT = 8
"""Kill the worker once at least this many posts are scored but not committed: a crash must redo them."""
KILL_ATTEMPTS = 3
"""The worker may commit between the probe's look and the kill; then the kill left nothing to redo, and the
test restarts it and kills again rather than checking a crash that did not happen."""


async def test_worker_sigkill_mid_batch_then_restart(fault_settings, fault_engine, pipeline, fault_report):
    posts = list(sample_posts(POSTS, seed=201))
    ids = {p.post_id for p in posts}
    await start_warm(fault_settings, fault_engine, pipeline, posts)
    producing = asyncio.create_task(produce(fault_settings, post_messages(posts[WARM_UP:]), rate_per_s=60))

    async with ProgressProbe(fault_settings) as probe:
        async def results_ahead_of_commits() -> bool:
            return await probe.uncommitted() >= IN_FLIGHT

        for _ in range(KILL_ATTEMPTS):
            await wait_until(results_ahead_of_commits, pipeline=pipeline, what="results ahead of committed offsets")
            pipeline.kill("worker")  # mid-batch: results are out, their offsets are not committed
            await probe.caught_up()
            in_flight_at_kill = await probe.uncommitted()
            pipeline.start("worker")
            if in_flight_at_kill > 0:
                break
        assert in_flight_at_kill > 0, f"the worker committed everything before each of {KILL_ATTEMPTS} kills"
    await producing
    await wait_stored(fault_engine, ids, pipeline)
    await drain(fault_settings, fault_engine, pipeline)

    scored = await times_scored(fault_settings, ids)
    rescored = sum(n > 1 for n in scored.values())
    assert rescored >= 1, "the kill should have forced the restarted worker to redo uncommitted work"
    await assert_counted_once(fault_engine, posts, fault_report, "worker SIGKILL mid-batch",
                              uncommitted_at_kill=in_flight_at_kill, rescored_after_restart=rescored)


def model_process(worker_pid: int) -> psutil.Process:
    """The worker's model process: the child multiprocessing spawned (workers.inference.child)."""
    children = [c for c in psutil.Process(worker_pid).children() if "multiprocessing.spawn" in " ".join(c.cmdline())]
    assert len(children) == 1, f"expected one model process, found {children}"
    return children[0]


async def test_model_process_sigkill_crashes_the_worker_then_restart(fault_settings, fault_engine, pipeline,
                                                                     fault_report):
    """Posts must not be dead-lettered for a model that is gone: the worker exits instead, and its
    restart (the process manager's job; here the test's) scores them."""
    posts = list(sample_posts(POSTS, seed=203))
    ids = {p.post_id for p in posts}
    await start_warm(fault_settings, fault_engine, pipeline, posts)
    producing = asyncio.create_task(produce(fault_settings, post_messages(posts[WARM_UP:]), rate_per_s=60))

    async def under_way() -> bool:
        return len(await stored_ids(fault_engine)) >= WARM_UP + 40

    await wait_until(under_way, pipeline=pipeline, what="posts flowing")
    assert pipeline.worker.proc is not None
    pipeline.expected.discard("worker")  # it is meant to exit now
    model_process(pipeline.worker.proc.pid).kill()

    async def worker_exited() -> bool:
        return not pipeline.worker.running

    await wait_until(worker_exited, timeout_s=60, pipeline=pipeline, what="the worker to exit")
    exit_code = pipeline.worker.proc.returncode
    assert exit_code != 0
    assert "the model process exited" in pipeline.log_text("worker")
    pipeline.start("worker")
    await producing
    await wait_stored(fault_engine, ids, pipeline)
    await drain(fault_settings, fault_engine, pipeline)

    letters = [DeadLetter.model_validate_json(m.value)
               for m in await read_all(fault_settings, fault_settings.kafka.dlq_topic, lambda messages: True)]
    assert letters == [], f"good posts dead-lettered: {[letter.reason for letter in letters][:3]}"
    await assert_counted_once(fault_engine, posts, fault_report, "model process SIGKILL", worker_exit_code=exit_code,
                              dead_lettered=len(letters))


async def test_sink_sigkill_mid_transaction_then_restart(fault_settings, fault_engine, pipeline, fault_report):
    posts = list(sample_posts(POSTS, seed=202))
    ids = {p.post_id for p in posts}
    await start_warm(fault_settings, fault_engine, pipeline, posts)

    # Hold the sink's next transaction open: a lock on trend_bucket blocks its batch statement.
    async with fault_engine.connect() as locker:
        await locker.execute(text("LOCK TABLE trend_bucket IN SHARE ROW EXCLUSIVE MODE"))
        await produce(fault_settings, post_messages(posts[WARM_UP:WARM_UP + 60]))

        async def sink_blocked() -> bool:
            async with fault_engine.connect() as conn:
                waiting = await conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> :me"),
                    {"me": await conn.scalar(text("SELECT pg_backend_pid()"))})
                return waiting.scalar_one() > 0

        await wait_until(sink_blocked, pipeline=pipeline, what="the sink's transaction to block")
        pipeline.kill("sink")  # mid-transaction: its statement is waiting, nothing committed
        await locker.rollback()

    await asyncio.sleep(1)  # the orphaned backend runs its statement, finds the client gone, rolls back
    assert len(await stored_ids(fault_engine)) == WARM_UP, "a killed sink's transaction must not commit"

    pipeline.start("sink")
    producing = asyncio.create_task(produce(fault_settings, post_messages(posts[WARM_UP + 60:]), rate_per_s=60))

    async def under_way() -> bool:
        return len(await stored_ids(fault_engine)) >= WARM_UP + 100

    await wait_until(under_way, pipeline=pipeline, what="posts flowing again")
    pipeline.kill("sink")  # a second crash, this time mid-stream
    pipeline.start("sink")
    await producing
    await wait_stored(fault_engine, ids, pipeline)
    await drain(fault_settings, fault_engine, pipeline)
    await assert_counted_once(fault_engine, posts, fault_report, "sink SIGKILL mid-transaction", sink_kills=2)
