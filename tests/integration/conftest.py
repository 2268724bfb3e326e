"""One embedded broker, PostgreSQL and Redis for the whole integration session, started by the suite."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from core.settings import Settings
from core.streaming.topics import ensure_topics
from monitor.devstack.embedded.stack import EmbeddedStack
from monitor.store.db import create_engine
from monitor.store.migrate import upgrade_head
from tests.brokers import test_broker
from tests.integration.database_helpers import private_database

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with EmbeddedStack.create(tmp_path_factory.mktemp("stack"), broker=test_broker()) as running:
        yield running


@pytest.fixture(scope="session")
def settings(stack: EmbeddedStack) -> Settings:
    return Settings(**{name.lower(): value for name, value in stack.env().items()},
                    topic_partitions=4, worker_max_batch=16, sink_max_batch=64)


@pytest.fixture(scope="session")
async def engine(settings: Settings):
    upgrade_head(settings.store.database_url or "")
    engine = create_engine(settings.store.database_url or "")
    await ensure_topics(settings)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def redis(settings: Settings):
    client = Redis.from_url(settings.store.redis_url or "")
    yield client
    await client.aclose()


@pytest.fixture
def fresh_database(settings: Settings):
    """An empty database on the test server, dropped afterwards: for tests that must not share the session's."""
    with private_database(settings.store.database_url or "") as url:
        yield url
