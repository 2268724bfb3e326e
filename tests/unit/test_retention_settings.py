"""RETENTION_*: minute buckets must outlive what alert rules read; 0 means forever."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from core.settings import Settings
from monitor.alerts.rules import LOOKBACK_DAYS, MAX_BASELINE_MINUTES, MAX_WINDOW_MINUTES
from monitor.store.retention import Retention


def test_lookback_is_the_longest_baseline_before_the_longest_window():
    assert LOOKBACK_DAYS * 24 * 60 == MAX_WINDOW_MINUTES + MAX_BASELINE_MINUTES == 37 * 24 * 60


@pytest.mark.parametrize("days", [1, 30, LOOKBACK_DAYS])
def test_minute_buckets_kept_shorter_than_alert_rules_read_are_refused(days):
    with pytest.raises(ValidationError, match="alert rules read minute buckets up to 37 days back"):
        Settings(_env_file=None, retention_minute_buckets_days=days)


@pytest.mark.parametrize("days", [0, LOOKBACK_DAYS + 1, 365])
def test_forever_or_longer_is_accepted(days):
    assert Settings(_env_file=None, retention_minute_buckets_days=days).retention.minute_buckets_days == days


def test_cutoffs_from_settings():
    now = datetime(2026, 11, 26, tzinfo=UTC)
    defaults = Retention.from_settings(Settings(_env_file=None))
    assert defaults.cutoffs(now) == (now - timedelta(days=30), now - timedelta(days=60))
    assert Retention(posts_days=0, minute_buckets_days=0).cutoffs(now) == (None, None)
