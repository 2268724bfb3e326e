"""Where the broker is: one place that refuses to start without one."""

from __future__ import annotations

from core.settings import Settings


def require_bootstrap(settings: Settings) -> str:
    if not settings.kafka.bootstrap:
        raise RuntimeError(
            "KAFKA_BOOTSTRAP is not set: point it at a broker, or run `monitor demo` for the embedded stack"
        )
    return settings.kafka.bootstrap
