"""Which broker the suite's embedded stacks run: EMBEDDED_BROKER (`tansu` by default, or `kafka-3.9`,
`kafka-4.1`). Apache Kafka needs a JDK and Maven: without them its runs are skipped with the reason, except in
CI (`CI=true`), where a missing JDK fails them."""

from __future__ import annotations

import os

import pytest

from core.settings import Settings
from monitor.devstack.embedded.apache_kafka import JavaUnavailable, require_java


def test_broker() -> str:
    broker = Settings().runtime.embedded_broker
    if broker != "tansu":
        try:
            require_java()
        except JavaUnavailable as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"{broker}: {exc} (CI requires the real-Kafka runs)")
            pytest.skip(f"{broker}: {exc}")
    return broker


test_broker.__test__ = False  # a helper, not a test
