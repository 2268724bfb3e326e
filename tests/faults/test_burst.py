"""A burst of ten times the normal rate: lag grows, then drains; the worker's memory stays bounded.

Backpressure comes from the consumer side: the worker takes bounded micro-batches
(`WORKER_MAX_BATCH`) and the broker client fetches a bounded amount ahead, so a burst waits on the
broker (lag) instead of in the worker's memory.
"""

from __future__ import annotations

import asyncio

import pytest

from monitor.devstack.samples import sample_posts
from tests.faults.helpers import assert_counted_once, drain, post_messages, produce, stored_ids, wait_stored

pytestmark = [pytest.mark.faults, pytest.mark.integration]

NORMAL_RATE = 25  # posts/s
NORMAL = 50
BURST = 500  # at 10x the normal rate
RSS_HEADROOM = 256 * 1024 * 1024
"""How much the worker's resident memory may grow during the burst: far less than buffering it all would
need at scale, far more than the noise of a Python process."""


async def test_burst_of_ten_times_the_rate(fault_settings, fault_engine, pipeline, fault_report):
    posts = list(sample_posts(NORMAL + BURST, seed=208))
    pipeline.start()
    await produce(fault_settings, post_messages(posts[:NORMAL]), rate_per_s=NORMAL_RATE)
    await wait_stored(fault_engine, {p.post_id for p in posts[:NORMAL]}, pipeline)
    baseline_rss = pipeline.worker.rss_bytes()

    produced = [NORMAL]
    lag, rss = [], []

    async def sample() -> None:
        while True:
            rss.append(pipeline.worker.rss_bytes())
            lag.append(produced[0] - len(await stored_ids(fault_engine)))
            await asyncio.sleep(0.1)

    sampler = asyncio.create_task(sample())
    try:
        await produce(fault_settings, post_messages(posts[NORMAL:]), rate_per_s=NORMAL_RATE * 10,
                      on_sent=lambda n: produced.__setitem__(0, NORMAL + n))
        await wait_stored(fault_engine, {p.post_id for p in posts}, pipeline)
        await asyncio.sleep(0.3)
    finally:
        sampler.cancel()

    assert max(lag) > 0, "the burst should have built up some lag"
    assert lag[-1] == 0, "and the lag should have drained"
    assert max(rss) - baseline_rss < RSS_HEADROOM, "worker memory grew with the burst"
    await drain(fault_settings, fault_engine, pipeline)
    await assert_counted_once(fault_engine, posts, fault_report, "burst at 10x the normal rate",
                              normal_rate_per_s=NORMAL_RATE, burst_rate_per_s=NORMAL_RATE * 10, burst_posts=BURST,
                              peak_lag_posts=max(lag), worker_rss_baseline_mib=round(baseline_rss / 2**20),
                              worker_rss_peak_mib=round(max(rss) / 2**20))
