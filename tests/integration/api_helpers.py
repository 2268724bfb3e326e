"""Shared by the API tests: the app in-process (httpx ASGI transport, lifespan run) and seeded trend data."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx

from core.settings import Settings
from monitor.api.app import create_app
from monitor.cli.api import explainer_loader
from monitor.sink.writer import write_results
from schemas import SentimentResult
from tests.integration.trend_helpers import result


@contextlib.asynccontextmanager
async def api_client(settings: Settings, **overrides) -> AsyncIterator[httpx.AsyncClient]:
    """The real app against the test stack, without the alert loop (tests drive evaluation themselves); it explains
    posts with the seeded tiny model, loaded only if a test asks for an explanation."""
    app = create_app(settings.replace(**overrides), run_alerts=False, explainer=explainer_loader(EXPLAINING_MODEL))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


EXPLAINING_MODEL = "untrained"
"""MODEL_CHECKPOINT of the API tests' explanations: the seeded tiny model, seconds to load."""


def unique_brand(prefix: str = "apitest") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def labelled(brand: str, labels: dict[str, int], minutes_ago: float = 2.0, image_ref: str | None = None,
             prefix: str | None = None) -> list[SentimentResult]:
    """`labels` posts per label about `brand`, in the minute that began `minutes_ago` before now, up to 30 s
    apart: one minute bucket (posts spread from an unaligned start could straddle two, a CI flake)."""
    at = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).replace(second=0, microsecond=0)
    prefix = prefix or f"{brand}-{uuid.uuid4().hex[:6]}"
    made = []
    for label, count in labels.items():
        for i in range(count):
            r = result(f"{prefix}-{label}-{i}", [brand], at + timedelta(seconds=i % 30), label,
                       text=f"{label} post {i} about {brand}")
            made.append(r.model_copy(update={"image_ref": image_ref}) if image_ref else r)
    return made


async def seed(engine, results: list[SentimentResult]) -> None:
    await write_results(engine, results)
