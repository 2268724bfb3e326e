"""`bench worker`'s CPU window: the steady part of the run, or from the first results when one fetch of the
embedded broker brought the 10th and the 90th percentile result together."""

import os

from benchmarks.worker import CpuMeter


def meter_with(marks: list[tuple[int, float]]) -> CpuMeter:
    meter = CpuMeter(os.getpid(), None)
    meter.marks = [(posts, {"pipeline": seconds, "model": seconds / 2}) for posts, seconds in marks]
    return meter


def test_cpu_is_measured_from_past_10_to_past_90_percent_of_the_results():
    meter = meter_with([(10, 1.0), (50, 2.0), (200, 3.0), (390, 5.0), (400, 9.0)])
    assert meter.ms_per_post(400) == {"pipeline": 8.824, "model": 4.412}  # 3 s / 340 posts, 1.5 s / 340 posts


def test_one_fetch_past_both_edges_widens_the_window_to_the_first_results():
    meter = meter_with([(20, 1.0), (400, 3.0)])
    assert meter.ms_per_post(400) == {"pipeline": 5.263, "model": 2.632}  # 2 s / 380 posts, 1 s / 380 posts


def test_every_result_in_one_fetch_is_not_measured():
    assert meter_with([(400, 3.0)]).ms_per_post(400) == {}
    assert meter_with([]).ms_per_post(400) == {}


def test_broker_cpus_read_as_taskset_does():
    from benchmarks.worker import parse_cpus

    assert parse_cpus("1") == {1}
    assert parse_cpus("0,2-3") == {0, 2, 3}
    assert parse_cpus(" 4 , ") == {4}
