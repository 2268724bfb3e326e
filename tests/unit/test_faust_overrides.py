"""`core.streaming.faust_overrides` replaces private code of faust-streaming, mode and aiokafka. This test pins
what it was verified against: when an upgrade changes any of that code, it fails and names the module to
re-check, instead of the worker misbehaving at run time."""

import hashlib
import importlib
import inspect

# Verified with faust-streaming 0.15.3, mode-streaming 0.7.1 and aiokafka 0.14.0.
UPSTREAM = {
    # Faust's per-message race, `await self.wait_first(callback(message), self.suspend_flow.wait())`, which
    # `EagerConsumer.wait_first` short-cuts.
    "faust.transport.consumer:Consumer._drain_messages": "44a2500309e83c630493f6828af50166",
    # The race itself (`super().wait_first`), and the flags the eager path reads (`_stopped`, `_crashed`).
    "mode.services:Service.wait_first": "feade6a31f8a67897cf687c54c66f5f4",
    # Where Faust builds the aiokafka consumer (`FetchConfigConsumerThread` sets its fetch wait and size).
    "faust.transport.drivers.aiokafka:AIOKafkaConsumerThread._create_worker_consumer":
        "c2701bfc3e6f6cad95c2be36d6a255a8",
    "faust.transport.drivers.aiokafka:Consumer._new_consumer_thread": "0870ec53dea75083995e3565c0f0a25a",
    "faust.app.base:App._new_transport": "42db531312dd776fc3937154a32f19ee",
    # Faust's producer settings: `IdempotentProducer` adds idempotence to `_settings_extra`, which `_new_producer`
    # merges last.
    "faust.transport.drivers.aiokafka:Producer._settings_extra": "a4c7bc41b63822236e4c9be1c49437d0",
    "faust.transport.drivers.aiokafka:Producer._new_producer": "e72355c3430ed02f5202c83e2f5ef7da",
    # aiokafka keeps the fetch settings in `_fetch_max_wait_ms` / `_fetch_min_bytes` and hands them to its
    # fetcher on `start`.
    "aiokafka.consumer.consumer:AIOKafkaConsumer.__init__": "01506f316191f7c99c785bec915756d1",
    "aiokafka.consumer.consumer:AIOKafkaConsumer.start": "2f1ba70443327538800d348e61042cde",
}


def source_digest(target: str) -> str:
    module_name, qualname = target.split(":")
    obj = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:32]


def test_the_private_code_the_overrides_replace_is_what_they_were_verified_against():
    current = {target: source_digest(target) for target in UPSTREAM}
    changed = {target: digest for target, digest in current.items() if digest != UPSTREAM[target]}
    assert not changed, (
        "core.streaming.faust_overrides relies on private code of faust-streaming / mode / aiokafka that changed "
        f"in this install: {sorted(changed)}. Re-read each function against the override, run "
        "tests/unit/test_kafka_consumer.py and `pytest -m faults`, then record the new digests here: "
        f"{changed}")


def test_the_fetch_settings_still_reach_aiokafkas_fetcher():
    """The attributes `FetchConfigConsumerThread` sets must be the ones `start` passes on."""
    from aiokafka import AIOKafkaConsumer

    start = inspect.getsource(AIOKafkaConsumer.start)
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in start, "core.streaming.faust_overrides: fetch wait"
    assert "fetch_min_bytes=self._fetch_min_bytes" in start, "core.streaming.faust_overrides: fetch min bytes"


async def test_the_apps_producer_is_idempotent_when_the_settings_ask(tmp_path):
    """Dead letters go through the Faust app's producer; on a broker that supports it, it must not write a retried
    send twice (`KAFKA_IDEMPOTENT_PRODUCER`, on by default)."""
    from core.settings import Settings
    from core.streaming.app import create_app

    for idempotent in (True, False):
        settings = Settings(kafka_bootstrap="127.0.0.1:9", kafka_idempotent_producer=idempotent,
                            data_dir=tmp_path)
        producer = create_app(f"pin-{idempotent}", settings).producer._new_producer()
        assert (producer._txn_manager is not None) is idempotent  # aiokafka's state for producer ids and sequences
        assert producer._txn_manager is None or producer.client is not None
