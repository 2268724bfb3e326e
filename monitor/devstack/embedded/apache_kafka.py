"""Apache Kafka in KRaft mode, from its jars on Maven Central: one combined broker/controller or a cluster.

The jars are fetched once with Maven (`kafka-pom.xml`, `mvn dependency:copy-dependencies`) into
`~/.cache/sentiment-monitor/kafka/<version>` ($MONITOR_KAFKA_CACHE overrides it) and run with the JDK on
PATH: no download at test time after the first, no Docker. Every node listens on loopback ports of its own;
a cluster's nodes are all controllers (a three-voter quorum) and all brokers.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from core.logging import get_logger
from core.process import ChildProcess, free_port

log = get_logger(__name__)

KAFKA_VERSIONS = {"3.9": "3.9.1", "4.1": "4.1.1"}
"""The Apache Kafka lines the suite runs on, each pinned: 3.9 as in docker-compose.yml, and a 4.x."""

READY_LINE = "Kafka Server started"
"""What a KRaft node logs once it serves clients."""

HEAP = "-Xmx512m"


class JavaUnavailable(RuntimeError):
    """No JDK or no Maven on PATH: Apache Kafka cannot run here (the embedded Tansu broker still can)."""


def cache_dir() -> Path:
    return Path(os.environ.get("MONITOR_KAFKA_CACHE", Path.home() / ".cache" / "sentiment-monitor" / "kafka"))


def require_java() -> tuple[str, str]:
    """Paths of `java` and `mvn`, or JavaUnavailable saying which is missing."""
    java, mvn = shutil.which("java"), shutil.which("mvn")
    missing = [name for name, path in (("java (a JDK 17+)", java), ("mvn (Maven)", mvn)) if path is None]
    if missing:
        raise JavaUnavailable(f"Apache Kafka needs {' and '.join(missing)} on PATH")
    return java, mvn  # type: ignore[return-value]


def kafka_jars(version: str) -> Path:
    """The folder holding Apache Kafka `version`'s broker jars, fetched from Maven Central on first use."""
    _, mvn = require_java()
    target = cache_dir() / version
    done = target / ".complete"
    if done.exists():
        return target
    target.mkdir(parents=True, exist_ok=True)
    profile = "kafka3" if version.startswith("3.") else "kafka4"
    pom = Path(str(files("monitor.devstack.embedded").joinpath("kafka-pom.xml")))
    log.info("fetching Apache Kafka from Maven Central", version=version, into=str(target))
    fetched = subprocess.run([mvn, "-q", "-B", "-f", str(pom), "-P", profile, f"-Dkafka.version={version}",
                              "dependency:copy-dependencies", f"-DoutputDirectory={target}"],
                             capture_output=True, text=True, timeout=900)
    if fetched.returncode != 0:
        output = fetched.stdout[-3000:] + fetched.stderr[-3000:]
        raise RuntimeError(f"mvn could not fetch Apache Kafka {version}:\n{output}")
    done.touch()
    return target


@dataclass(frozen=True)
class NodeAddress:
    node_id: int
    port: int
    controller_port: int


LOG4J = "log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\n" \
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n" \
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\nlog4j.logger.org.apache.kafka=INFO\n"
LOG4J2 = "rootLogger.level=INFO\nrootLogger.appenderRef.stdout.ref=STDOUT\nappender.console.type=Console\n" \
         "appender.console.name=STDOUT\nappender.console.layout.type=PatternLayout\n" \
         "appender.console.layout.pattern=[%d] %p %m (%c)%n\n"


def node_properties(node: NodeAddress, voters: list[NodeAddress], log_dir: Path, replication: int,
                    overrides: dict[str, object] | None = None) -> str:
    """server.properties of one combined broker/controller node (`overrides` replace or add keys: listeners for
    TLS/SASL, say)."""
    quorum = ",".join(f"{v.node_id}@127.0.0.1:{v.controller_port}" for v in voters)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": quorum,
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": log_dir,
        "num.partitions": 4,
        "default.replication.factor": replication,
        "min.insync.replicas": min(2, replication),
        "offsets.topic.replication.factor": replication,
        "offsets.topic.num.partitions": 8,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min(2, replication),
        "group.initial.rebalance.delay.ms": 0,
        "auto.create.topics.enable": "true",
        "unclean.leader.election.enable": "false",
        "message.max.bytes": 16 * 1024 * 1024,  # as docker-compose.yml's broker
        # Faster group joins and failure detection than production needs, so the tests' short consumer timeouts
        # (CONSUMER_SESSION_TIMEOUT_S of a few seconds) are accepted; stock Kafka refuses sessions under 6 s.
        "group.min.session.timeout.ms": 1000,
        **(overrides or {}),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def kraft_node(version: str, node: NodeAddress, voters: list[NodeAddress], data_dir: Path, cluster_id: str,
               replication: int, overrides: dict[str, object] | None = None) -> ChildProcess:
    """A node's process, its storage formatted (once) for `cluster_id`; `start()` waits until it serves."""
    java, _ = require_java()
    jars = kafka_jars(version)
    home = data_dir / f"kafka-{node.node_id}"
    home.mkdir(parents=True, exist_ok=True)
    properties = home / "server.properties"
    properties.write_text(node_properties(node, voters, home / "data", replication, overrides))
    (home / "log4j.properties").write_text(LOG4J)
    (home / "log4j2.properties").write_text(LOG4J2)
    classpath = f"{jars}/*"
    logging = [f"-Dlog4j.configuration=file:{home / 'log4j.properties'}",
               f"-Dlog4j2.configurationFile={home / 'log4j2.properties'}"]
    if not (home / "data" / "meta.properties").exists():
        formatted = subprocess.run([java, HEAP, *logging, "-cp", classpath, "kafka.tools.StorageTool", "format",
                                    "-t", cluster_id, "-c", str(properties), "--ignore-formatted"],
                                   capture_output=True, text=True, timeout=120)
        if formatted.returncode != 0:
            raise RuntimeError(f"kafka-storage format failed:\n{formatted.stdout[-2000:]}{formatted.stderr[-2000:]}")
    log_path = data_dir / "logs" / f"kafka-{node.node_id}.log"

    def serving() -> bool:
        return READY_LINE in log_path.read_text(errors="replace")

    return ChildProcess(
        name=f"kafka {version} node {node.node_id}",
        argv=[java, HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true", *logging, "-cp", classpath, "kafka.Kafka",
              str(properties)],
        log_path=log_path, port=node.port, ready_probe=serving, startup_timeout_s=120.0,
    )


def kraft_cluster(version: str, data_dir: Path, nodes: int = 1,
                  overrides: Callable[[NodeAddress], dict[str, object]] | None = None) -> list[ChildProcess]:
    """`nodes` KRaft nodes (each broker and controller) of one new cluster; replication = min(nodes, 3).
    `overrides(node)` adds or replaces server properties per node."""
    addresses = [NodeAddress(i + 1, free_port(), free_port()) for i in range(nodes)]
    new_id = cluster_id()
    return [kraft_node(version, node, addresses, data_dir, new_id, min(nodes, 3),
                       overrides(node) if overrides else None) for node in addresses]


def cluster_id() -> str:
    """A random cluster id as Kafka makes one: a UUID in URL-safe base64, unpadded, drawn again when it starts with
    '-' (as Kafka's `Uuid.randomUuid` does), which `kafka-storage format -t` would take for an option."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate
