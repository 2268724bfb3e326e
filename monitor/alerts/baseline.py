"""Robust baselines and z-scores for anomaly rules: pure arithmetic, no I/O (the unit tests pin it down).

A baseline is the median and the median absolute deviation (MAD) of hourly values: the same hour of the week in
each of the past weeks (seasonality: Monday 09:00 is compared with Mondays 09:00), or every hour of the baseline
period while fewer than `MIN_SEASONAL_SAMPLES` such hours exist. The MAD is scaled by 1.4826 to estimate a
standard deviation (exact for normal data); a MAD of 0 (over half the hours equal) falls back to the mean absolute
deviation x 1.2533, and the scale is never below the noise of counting itself, so a flat or short history cannot
turn one extra post into an "infinite" z.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

MAD_TO_SIGMA = 1.4826
"""1 / Phi^-1(3/4): a normal distribution's MAD times this is its standard deviation."""
MEAN_AD_TO_SIGMA = 1.2533
"""sqrt(pi / 2): the same for the mean absolute deviation (used when the MAD is 0)."""
HOURS_PER_WEEK = 7 * 24
MIN_SEASONAL_SAMPLES = 3
"""Same-hour-of-week values needed for a seasonal baseline (so at least 3 weeks of history)."""
MIN_SAMPLES = 24
"""Hourly values needed for any baseline: under a day of history, a rule stays quiet."""

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Metric = Literal["volume", "net_sentiment"]


def hour_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_of_week(moment: datetime) -> int:
    """0 = Monday 00:00-01:00 UTC ... 167 = Sunday 23:00-24:00 UTC."""
    moment = moment.astimezone(UTC)
    return moment.weekday() * 24 + moment.hour


def hour_of_week_label(hour: int) -> str:
    return f"{DAYS[hour // 24]} {hour % 24:02d}:00 UTC"


@dataclass(frozen=True)
class Samples:
    values: list[float]
    seasonal: bool


def baseline_samples(hourly: Mapping[datetime, float], reference_hour: datetime, before: datetime, weeks: int,
                     history_start: datetime | None, missing: float | None) -> Samples | None:
    """The hourly values to compare the window with, or None when history is too short for any baseline.

    `hourly` maps UTC hour starts to values; hours from `history_start` (the brand's first hour bucket) or
    `weeks` before `before`, whichever is later, up to the hour `before` falls in (excluded: it overlaps the
    window) are candidates. An hour absent from `hourly` counts as `missing` (0 for volume: nothing was posted)
    or is skipped (None: net sentiment is undefined without posts).
    """
    if history_start is None:
        return None
    first = max(hour_start(history_start), hour_start(before) - timedelta(weeks=weeks))
    cutoff = hour_start(before)
    target = hour_of_week(reference_hour)
    seasonal: list[float] = []
    every: list[float] = []
    moment = first
    while moment < cutoff:
        value = hourly.get(moment, missing)
        if value is not None:
            every.append(value)
            if hour_of_week(moment) == target:
                seasonal.append(value)
        moment += timedelta(hours=1)
    if len(seasonal) >= MIN_SEASONAL_SAMPLES:
        return Samples(seasonal, True)
    if len(every) >= MIN_SAMPLES:
        return Samples(every, False)
    return None


@dataclass(frozen=True)
class Baseline:
    median: float
    mad: float
    scale: float
    """The standard deviation z divides by: max(robust scale, noise floor)."""
    scale_from: Literal["mad", "mean_abs_dev", "noise_floor"]
    samples: int
    seasonal: bool


def noise_floor(metric: Metric, median: float, window_volume: int) -> float:
    """The least spread a metric has from counting alone: Poisson's sqrt(mean) for a volume; for net sentiment
    (per-post scores -1/0/+1 averaged), the standard error sqrt((1 - m^2) / n) of the window's `n` posts."""
    if metric == "volume":
        return math.sqrt(max(median, 1.0))
    return math.sqrt(max(1.0 - median * median, 0.01) / max(window_volume, 1))


def robust_baseline(samples: Samples, metric: Metric, window_volume: int) -> Baseline:
    """Median, MAD and the scale for z; `window_volume` (posts in the observed window) sets net sentiment's floor."""
    values = samples.values
    median = statistics.median(values)
    floor = noise_floor(metric, median, window_volume)
    mad = statistics.median(abs(v - median) for v in values)
    scale_from: Literal["mad", "mean_abs_dev", "noise_floor"] = "mad"
    scale = MAD_TO_SIGMA * mad
    if scale == 0:
        scale_from, scale = "mean_abs_dev", MEAN_AD_TO_SIGMA * statistics.fmean(abs(v - median) for v in values)
    if scale < floor:
        scale_from, scale = "noise_floor", floor
    return Baseline(median=median, mad=mad, scale=scale, scale_from=scale_from, samples=len(values),
                    seasonal=samples.seasonal)


def z_score(observed: float, baseline: Baseline) -> float:
    """(observed - median) / scale; the scale is positive by construction (the floor is)."""
    return (observed - baseline.median) / baseline.scale


def exceeds(metric: Metric, z: float, threshold: float) -> bool:
    """Volume alerts on rises only (a quiet hour is no incident); net sentiment on a swing either way."""
    return z >= threshold if metric == "volume" else abs(z) >= threshold

