"""SASL over TLS on Apache Kafka, with PLAIN and with SCRAM-SHA-512: the worker consumes and produces, the admin
client creates topics, and a consumer reads results, all through KAFKA_SECURITY_PROTOCOL=SASL_SSL; a wrong password
is refused. The broker's certificate is signed by a CA made here with openssl (KAFKA_SSL_CAFILE); SCRAM credentials
are stored in the cluster's metadata through the admin API (librdkafka's AlterUserScramCredentials), as an operator
would with `kafka-configs --alter --add-config SCRAM-SHA-512=[...]`."""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

from core.process import ChildProcess, free_port
from core.settings import Settings
from core.streaming.connection import client_options
from core.streaming.topics import ensure_topics
from monitor.devstack.embedded.apache_kafka import KAFKA_VERSIONS, NodeAddress, kraft_cluster
from monitor.devstack.samples import sample_posts
from schemas import SentimentResult
from tests.brokers import test_broker

pytestmark = pytest.mark.integration

USER, PASSWORD = "monitor", "monitor-secret"
MECHANISMS = ("PLAIN", "SCRAM-SHA-512")
POSTS = 12


def make_certificates(folder: Path) -> tuple[Path, Path]:
    """A CA, and a server key + certificate for 127.0.0.1 signed by it: (ca.pem, server.pem with key and cert)."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=monitor-test-ca")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.crt", "-days", "2", "-extfile", "san.ext")
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "server.key", "-out", "server-pkcs8.key")
    server = folder / "server.pem"
    server.write_text((folder / "server-pkcs8.key").read_text() + (folder / "server.crt").read_text())
    return folder / "ca.pem", server


def add_scram_user(plaintext_bootstrap: str) -> None:
    """The SCRAM-SHA-512 credential for USER, written through the broker's unsecured listener."""
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin = AdminClient({"bootstrap.servers": plaintext_bootstrap})
    upsert = UserScramCredentialUpsertion(USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192),
                                          PASSWORD.encode())
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)


@pytest.fixture(params=MECHANISMS)
def secured_broker(request, tmp_path):
    broker = test_broker()
    if broker == "tansu":
        pytest.skip("SASL and TLS are tested on Apache Kafka (EMBEDDED_BROKER=kafka-3.9 or kafka-4.1)")
    ca, server_pem = make_certificates(tmp_path)
    secure_port = free_port()

    def secured(node: NodeAddress) -> dict[str, object]:
        return {
            "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port},"
                         f"SASL_SSL://127.0.0.1:{secure_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port},SASL_SSL://127.0.0.1:{secure_port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            "sasl.enabled.mechanisms": ",".join(MECHANISMS),
            "listener.name.sasl_ssl.plain.sasl.jaas.config":
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{USER}="{PASSWORD}";',
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config":
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": server_pem,
        }

    [node] = kraft_cluster(KAFKA_VERSIONS[broker.removeprefix("kafka-")], tmp_path / "kafka", overrides=secured)
    node.start()
    try:
        if request.param.startswith("SCRAM"):
            add_scram_user(f"127.0.0.1:{node.port}")
        yield f"127.0.0.1:{secure_port}", ca, request.param
    finally:
        node.stop()


def secure_env(bootstrap: str, ca: Path, mechanism: str, password: str = PASSWORD) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP": bootstrap, "KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": mechanism,
            "KAFKA_SASL_USERNAME": USER, "KAFKA_SASL_PASSWORD": password, "KAFKA_SSL_CAFILE": str(ca),
            "TOPIC_PARTITIONS": "2", "MODEL_CHECKPOINT": "untrained", "WORKER_GROUP": "worker-sasl"}


async def test_the_worker_runs_over_sasl_and_tls(secured_broker, tmp_path):
    bootstrap, ca, mechanism = secured_broker
    env = secure_env(bootstrap, ca, mechanism)
    settings = Settings(**{name.lower(): value for name, value in env.items()})
    await ensure_topics(settings)
    posts = list(sample_posts(POSTS, seed=91, start=datetime(2026, 10, 1, tzinfo=UTC)))
    producer = AIOKafkaProducer(**client_options(settings), acks="all")
    await producer.start()
    try:
        for post in posts:
            await producer.send(settings.kafka.posts_topic, post.model_dump_json().encode(), key=post.post_id.encode())
        await producer.flush()
    finally:
        await producer.stop()

    worker = ChildProcess.monitor("worker", env, tmp_path / "worker.log").start()
    consumer = AIOKafkaConsumer(settings.kafka.sentiment_topic, **client_options(settings),
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    seen: set[str] = set()
    try:
        async with asyncio.timeout(180):
            while len(seen) < POSTS:
                worker.check_alive()
                for messages in (await consumer.getmany(timeout_ms=500)).values():
                    seen |= {SentimentResult.model_validate_json(m.value).post_id for m in messages}
    finally:
        await consumer.stop()
        worker.stop()
    assert seen == {post.post_id for post in posts}


async def test_a_wrong_password_is_refused(secured_broker):
    bootstrap, ca, mechanism = secured_broker
    env = secure_env(bootstrap, ca, mechanism, "wrong")
    settings = Settings(**{name.lower(): value for name, value in env.items()})
    producer = AIOKafkaProducer(**client_options(settings), request_timeout_ms=10_000)
    with pytest.raises(KafkaError):
        async with asyncio.timeout(60):
            await producer.start()
    await producer.stop()
