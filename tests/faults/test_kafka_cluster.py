"""Apache Kafka as production runs it: three KRaft nodes, replication factor 3, `min.insync.replicas` 2.

Mid-stream, the leader of a `posts` partition is killed with SIGKILL, then restarted; later the active
controller (the KRaft quorum's leader) is killed. Producers (acks=all, idempotent), the worker and the sink ride
through leader elections: every post is stored and counted exactly once. Runs only on Apache Kafka
(EMBEDDED_BROKER=kafka-3.9 or kafka-4.1): Tansu has no replication.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from core.process import ChildProcess
from core.settings import Settings
from core.streaming.topics import ensure_topics
from monitor.devstack.embedded.apache_kafka import KAFKA_VERSIONS, kraft_cluster
from monitor.devstack.embedded.postgres import database_url, postgres_server
from monitor.devstack.embedded.redis import redis_server
from monitor.devstack.samples import sample_posts
from monitor.store.db import create_engine
from monitor.store.migrate import upgrade_head
from tests.brokers import test_broker
from tests.faults.conftest import CHILD_ENV
from tests.faults.helpers import (
    WARM_UP,
    Pipeline,
    assert_counted_once,
    drain,
    post_messages,
    produce,
    start_warm,
    wait_stored,
)

pytestmark = [pytest.mark.faults, pytest.mark.integration]

POSTS = 300


def in_parallel(action, processes: list[ChildProcess]) -> None:
    with ThreadPoolExecutor(len(processes)) as pool:
        list(pool.map(action, processes))


@pytest.fixture
def cluster(tmp_path):
    broker = test_broker()
    if broker == "tansu":
        pytest.skip("the cluster scenarios need Apache Kafka: EMBEDDED_BROKER=kafka-3.9 or kafka-4.1")
    nodes = kraft_cluster(KAFKA_VERSIONS[broker.removeprefix("kafka-")], tmp_path / "cluster", nodes=3)
    servers = [postgres_server(tmp_path), redis_server(tmp_path)]
    try:
        in_parallel(lambda server: server.start(), [*nodes, *servers])
        yield nodes, servers
    finally:
        in_parallel(lambda server: server.kill(), [*nodes, *servers])


@pytest.fixture
def cluster_env(cluster) -> dict[str, str]:
    nodes, (postgres, redis) = cluster
    return {"KAFKA_BOOTSTRAP": ",".join(f"127.0.0.1:{node.port}" for node in nodes),
            "DATABASE_URL": database_url(postgres.port), "REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "TOPIC_REPLICATION": "3", **CHILD_ENV}


async def partition_leader(settings: Settings, topic: str, partition: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return next(p["leader"] for p in description["partitions"] if p["partition"] == partition)


def quorum_leader(nodes: list[ChildProcess]) -> ChildProcess:
    """The active controller: the node that most recently became the KRaft quorum's leader, by its log."""
    def latest_epoch(node: ChildProcess) -> int:
        text = node.log_path.read_text(errors="replace")
        epochs = [int(e) for e in re.findall(r"Completed transition to Leader\(.*?\bepoch=(\d+)", text)]
        return max(epochs, default=-1)

    return max(nodes, key=latest_epoch)


async def test_leader_and_controller_kills_and_a_restart_lose_nothing(cluster, cluster_env, tmp_path, fault_report):
    nodes, _ = cluster
    settings = Settings(**{name.lower(): value for name, value in cluster_env.items() if name != "MODEL_CHECKPOINT"})
    upgrade_head(settings.store.database_url or "")
    await ensure_topics(settings)
    engine = create_engine(settings.store.database_url or "")
    pipeline = Pipeline(cluster_env, tmp_path / "logs")
    posts = list(sample_posts(POSTS, seed=301))
    try:
        await start_warm(settings, engine, pipeline, posts)
        third = (POSTS - WARM_UP) // 3
        batches = [posts[WARM_UP:WARM_UP + third], posts[WARM_UP + third:WARM_UP + 2 * third],
                   posts[WARM_UP + 2 * third:]]

        producing = asyncio.create_task(produce(settings, post_messages(batches[0]), rate_per_s=40))
        await asyncio.sleep(1.5)
        leader_id = await partition_leader(settings, settings.kafka.posts_topic, 0)
        leader = next(node for node in nodes if node.name.endswith(f"node {leader_id}"))
        leader.kill()  # mid-stream, no clean shutdown: the followers elect a new leader
        await producing
        await wait_stored(engine, {p.post_id for p in posts[:WARM_UP] + batches[0]}, pipeline, timeout_s=240)

        leader.start()  # the broker comes back on the same ports and catches up
        await produce(settings, post_messages(batches[1]), rate_per_s=40)
        await wait_stored(engine, {p.post_id for p in posts[:WARM_UP + 2 * third]}, pipeline, timeout_s=240)

        controller = quorum_leader(nodes)
        producing = asyncio.create_task(produce(settings, post_messages(batches[2]), rate_per_s=40))
        await asyncio.sleep(1.0)
        controller.kill()  # the quorum elects another controller from the two left
        await producing
        await wait_stored(engine, {p.post_id for p in posts}, pipeline, timeout_s=240)
        await drain(settings, engine, pipeline)
        await assert_counted_once(engine, posts, fault_report, "3-broker cluster: leader and controller SIGKILL",
                                  killed_leader=leader_id, killed_controller=controller.name)
    finally:
        pipeline.stop()
        await engine.dispose()
