"""The dashboard in a real browser: embedded stack, a sink process, `monitor api`, results on the sentiment topic.

The worker is left out on purpose: results are produced straight to the sentiment topic (as the
worker would), so the browser suite exercises sink -> PostgreSQL/Redis -> API -> SSE -> page
without loading the RADM encoders on the CI machine's two cores.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy import func, select

from core.process import ChildProcess, free_port
from monitor.devstack.api_launch import start_api
from monitor.devstack.embedded.stack import EmbeddedStack
from monitor.store.db import post_sentiment
from monitor.store.migrate import upgrade_head
from schemas import SentimentResult
from tests.brokers import test_broker
from tests.integration.trend_helpers import result
from workers.media.images import thumbnail_jpeg

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
READ_TOKEN = "browser-read-token"
BRANDS = ("acme", "globex", "initech")

pytestmark = pytest.mark.browser

THUMBNAIL = thumbnail_jpeg(np.full((32, 32, 3), (37, 99, 235), dtype=np.uint8), 4 / 3, 96)
"""What a worker attaches to a result with an inline image (a blue 32 x 24 JPEG)."""


def sample_results(count: int, prefix: str, brands: Iterable[str] = BRANDS, seed: int = 3,
                   minutes_back: float = 20.0) -> list[SentimentResult]:
    """Results as the worker would produce them, spread over the last `minutes_back` minutes."""
    rng, now, brands = random.Random(seed), datetime.now(UTC), list(brands)
    texts = {"positive": "Love the new {b} phone, great service", "neutral": "{b} announces an event on Tuesday",
             "negative": "{b} support is terrible, still waiting"}
    made = []
    for i in range(count):
        brand, label = rng.choice(brands), rng.choice(list(texts))
        inline = i % 3 == 0
        image = {"image_ref": "sha256:" + f"{i:064x}", "thumbnail": THUMBNAIL} if inline else {}
        made.append(result(f"{prefix}-{i}", [brand], now - timedelta(minutes=rng.uniform(0, minutes_back)), label,
                           text=texts[label].format(b=brand.capitalize())).model_copy(update=image))
    return made


class Pipeline:
    """Handles for the test: produce results, count stored posts, the API's base URL."""

    def __init__(self, stack: EmbeddedStack, base_url: str) -> None:
        self.env, self.base_url = stack.env(), base_url
        self.engine = create_sync_engine(self.env["DATABASE_URL"])

    def produce(self, results: list[SentimentResult], topic: str = "sentiment") -> None:
        async def send() -> None:
            producer = AIOKafkaProducer(bootstrap_servers=self.env["KAFKA_BOOTSTRAP"], acks="all")
            await producer.start()
            try:
                for r in results:
                    await producer.send(topic, key=r.post_id.encode(), value=r.model_dump_json().encode())
                await producer.flush()
            finally:
                await producer.stop()

        with ThreadPoolExecutor(1) as pool:  # its own event loop, whatever the test runner's loop is doing
            pool.submit(asyncio.run, send()).result()

    def stored(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(post_sentiment)).scalar_one()


@pytest.fixture(scope="module")
def browser_stack(tmp_path_factory):
    with EmbeddedStack.create(tmp_path_factory.mktemp("browser-stack"), broker=test_broker()) as running:
        yield running


@pytest.fixture(scope="module")
def pipeline(browser_stack: EmbeddedStack, tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is absent (`make test` installs it: apt-get install chromium)")
    logs = tmp_path_factory.mktemp("browser-logs")
    env = {**browser_stack.env(), "METRICS_PORT": "0", "TOPIC_PARTITIONS": "2", "SINK_MAX_WAIT_S": "0.1",
           "SINK_KEYPHRASE_INTERVAL_S": "1",
           "API_READ_TOKEN": READ_TOKEN, "ALERT_INTERVAL_S": "2", "LOG_LEVEL": "INFO",
           # The API explains posts ("why?") with the seeded tiny model: seconds to load, no weights.
           "MODEL_CHECKPOINT": "untrained"}
    upgrade_head(env["DATABASE_URL"])
    from core.settings import Settings
    from core.streaming.topics import ensure_topics

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, ensure_topics(Settings(**{k.lower(): v for k, v in env.items()}))).result()
    sink = ChildProcess.monitor("sink", env, logs / "sink.log").start()
    api, base_url = start_api(env, logs / "api.log", free_port())
    try:
        yield Pipeline(browser_stack, base_url)
    finally:
        api.stop()
        sink.stop()


@pytest.fixture(scope="module")
def browser():
    """Module scope, not session: Playwright's sync API keeps an event loop running in this thread while it
    is open, and pytest-asyncio cannot start its loops for the async tests that follow until it is closed."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
    yield page
    context.close()
