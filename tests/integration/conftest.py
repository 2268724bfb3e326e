"""One embedded broker, PostgreSQL and Redis for the whole integration session, started by the suite."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from monitor.db import create_engine
from monitor.embedded.stack import EmbeddedStack
from monitor.migrate import upgrade_head
from monitor.settings import Settings
from monitor.streaming import ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    with EmbeddedStack.create(tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture(scope="session")
def settings(stack: EmbeddedStack) -> Settings:
    return Settings(**{name.lower(): value for name, value in stack.env().items()},
                    topic_partitions=4, worker_max_batch=16, sink_max_batch=64)


@pytest.fixture(scope="session")
async def engine(settings: Settings):
    upgrade_head(settings.database_url or "")
    engine = create_engine(settings.database_url or "")
    await ensure_topics(settings)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def redis(settings: Settings):
    client = Redis.from_url(settings.redis_url or "")
    yield client
    await client.aclose()
