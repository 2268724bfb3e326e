"""Anomaly baselines: hour-of-week seasonality, the short-history fallback, MAD scaling and its guards."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from monitor.alerts.baseline import (
    MAD_TO_SIGMA,
    MEAN_AD_TO_SIGMA,
    MIN_SAMPLES,
    Samples,
    baseline_samples,
    exceeds,
    hour_of_week,
    hour_of_week_label,
    noise_floor,
    robust_baseline,
    z_score,
)

MONDAY_9 = datetime(2026, 12, 14, 9, tzinfo=UTC)  # a Monday
assert MONDAY_9.weekday() == 0


def hours(start: datetime, end: datetime):
    moment = start
    while moment < end:
        yield moment
        moment += timedelta(hours=1)


def weekly_pattern(weeks: int, now: datetime, busy_hour: int = 9, busy: float = 100.0, quiet: float = 10.0):
    """`busy` posts at `busy_hour` every day, `quiet` at every other hour, for `weeks` weeks before `now`."""
    return {h: busy if h.hour == busy_hour else quiet for h in hours(now - timedelta(weeks=weeks), now)}


def test_hour_of_week():
    assert hour_of_week(MONDAY_9) == 9
    assert hour_of_week(MONDAY_9 + timedelta(days=6, hours=14)) == 167
    assert hour_of_week_label(167) == "Sun 23:00 UTC"


def test_seasonal_baseline_compares_the_same_hour_of_the_week():
    window_start = MONDAY_9 + timedelta(minutes=5)
    hourly = weekly_pattern(4, MONDAY_9)
    samples = baseline_samples(hourly, MONDAY_9, window_start, weeks=4, history_start=MONDAY_9 - timedelta(weeks=4),
                               missing=0.0)
    assert samples == Samples([100.0] * 4, seasonal=True)  # Mondays 09:00, not the quiet hours around them
    baseline = robust_baseline(samples, "volume", 100)
    assert baseline.median == 100 and baseline.seasonal
    assert z_score(100.0, baseline) == 0.0  # the usual Monday-morning rush is no anomaly


def test_the_hour_the_window_overlaps_is_not_its_own_baseline():
    window_start = MONDAY_9 + timedelta(minutes=30)
    hourly = {**weekly_pattern(4, MONDAY_9), MONDAY_9: 5000.0}
    samples = baseline_samples(hourly, MONDAY_9, window_start, 4, MONDAY_9 - timedelta(weeks=4), 0.0)
    assert 5000.0 not in samples.values and len(samples.values) == 4


def test_short_history_falls_back_to_every_hour():
    history_start = MONDAY_9 - timedelta(days=5)  # no earlier Monday 09:00
    hourly = weekly_pattern(4, MONDAY_9)
    samples = baseline_samples(hourly, MONDAY_9, MONDAY_9, 4, history_start, 0.0)
    assert not samples.seasonal and len(samples.values) == 5 * 24
    assert robust_baseline(samples, "volume", 10).median == 10.0  # mostly quiet hours


def test_too_short_a_history_gives_no_baseline():
    start = MONDAY_9 - timedelta(hours=MIN_SAMPLES - 1)
    assert baseline_samples(weekly_pattern(1, MONDAY_9), MONDAY_9, MONDAY_9, 4, start, 0.0) is None
    assert baseline_samples({}, MONDAY_9, MONDAY_9, 4, None, 0.0) is None  # no hour bucket at all


def test_missing_hours_count_as_zero_volume_but_are_skipped_for_sentiment():
    start = MONDAY_9 - timedelta(days=2)
    sparse = {MONDAY_9 - timedelta(hours=3): 0.5}
    volume = baseline_samples(sparse, MONDAY_9, MONDAY_9, 4, start, missing=0.0)
    assert len(volume.values) == 48 and volume.values.count(0.0) == 47
    assert baseline_samples(sparse, MONDAY_9, MONDAY_9, 4, start, missing=None) is None  # one hour with posts


def test_mad_is_scaled_to_a_standard_deviation():
    samples = Samples([10, 12, 14, 16, 18, 20, 22], seasonal=True)
    baseline = robust_baseline(samples, "volume", 50)
    assert baseline.median == 16 and baseline.mad == 4
    assert baseline.scale == pytest.approx(4 * MAD_TO_SIGMA) and baseline.scale_from == "mad"
    assert z_score(40, baseline) == pytest.approx(24 / (4 * MAD_TO_SIGMA))


def test_an_outlier_in_the_baseline_does_not_mask_the_next_one():
    """Median and MAD ignore one earlier spike; a mean and standard deviation would not."""
    samples = Samples([20, 21, 19, 20, 22, 18, 20, 400], seasonal=False)
    baseline = robust_baseline(samples, "volume", 100)
    assert baseline.median == 20 and z_score(100, baseline) > 10


def test_zero_mad_falls_back_to_the_mean_absolute_deviation():
    samples = Samples([50, 50, 50, 50, 50, 50, 90, 10], seasonal=True)  # over half equal: MAD 0
    baseline = robust_baseline(samples, "volume", 60)
    assert baseline.mad == 0 and baseline.scale_from == "mean_abs_dev"
    assert baseline.scale == pytest.approx(MEAN_AD_TO_SIGMA * 80 / 8)


def test_a_flat_series_is_floored_at_counting_noise():
    flat = Samples([25.0] * 30, seasonal=False)
    baseline = robust_baseline(flat, "volume", 30)
    assert baseline.scale_from == "noise_floor" and baseline.scale == pytest.approx(5.0)  # sqrt(25)
    assert z_score(30, baseline) == pytest.approx(1.0)  # five more posts than usual: z 1, not infinity
    assert math.isfinite(z_score(26, robust_baseline(Samples([0.0] * 30, False), "volume", 26)))


def test_net_sentiment_floor_is_the_windows_standard_error():
    flat = Samples([0.2] * 30, seasonal=True)
    baseline = robust_baseline(flat, "net_sentiment", 100)
    assert baseline.scale == pytest.approx(math.sqrt((1 - 0.04) / 100))
    assert noise_floor("net_sentiment", 0.2, 25) > noise_floor("net_sentiment", 0.2, 100)  # fewer posts, noisier


def test_direction():
    assert exceeds("volume", 4.0, 3.0) and not exceeds("volume", -4.0, 3.0)  # a quiet hour is no incident
    assert exceeds("net_sentiment", -4.0, 3.0) and exceeds("net_sentiment", 4.0, 3.0)
    assert not exceeds("net_sentiment", 2.9, 3.0)
