"""How long a librdkafka (confluent-kafka) group consumer waits for its first message on the embedded Tansu broker,
by `session.timeout.ms`: Tansu holds each group join for about half the session timeout.

Run: `PYTHONPATH=$PWD .venv/bin/python bench/exploratory/tansu_librdkafka_join.py` (one line per session timeout).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer

from monitor.devstack.embedded.kafka import kafka_server

SESSION_TIMEOUTS_MS = (45_000, 6_000, 3_000)  # librdkafka's default first


def first_message_s(bootstrap: str, session_ms: int) -> float | None:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"join-{session_ms}",
                         "auto.offset.reset": "earliest", "session.timeout.ms": session_ms,
                         "heartbeat.interval.ms": min(3_000, session_ms // 3)})
    consumer.subscribe(["join-probe"])
    started = time.monotonic()
    try:
        while time.monotonic() - started < 90:
            message = consumer.poll(0.2)
            if message is not None and not message.error():
                return time.monotonic() - started
        return None
    finally:
        consumer.close()


def main() -> None:
    server = kafka_server(Path(tempfile.mkdtemp(prefix="tansu-join-")))
    server.start()
    try:
        bootstrap = f"127.0.0.1:{server.port}"
        producer = Producer({"bootstrap.servers": bootstrap})
        for i in range(5):
            producer.produce("join-probe", value=f"probe {i}".encode())
        producer.flush(10)
        for session_ms in SESSION_TIMEOUTS_MS:
            waited = first_message_s(bootstrap, session_ms)
            print(f"session.timeout.ms={session_ms}: first message after "
                  f"{'none within 90 s' if waited is None else f'{waited:.2f} s'}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
