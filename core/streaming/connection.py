"""Where the broker is and how to reach it: one place for the bootstrap list and the TLS/SASL options that every
client of the monitor (Faust apps, producers, the admin client) shares."""

from __future__ import annotations

from typing import Any

import faust
from aiokafka.helpers import create_ssl_context

from core.settings import KafkaSettings, Settings


def require_bootstrap(settings: Settings) -> str:
    if not settings.kafka.bootstrap:
        raise RuntimeError(
            "KAFKA_BOOTSTRAP is not set: point it at a broker, or run `monitor demo` for the embedded stack"
        )
    return settings.kafka.bootstrap


def _ssl_context(kafka: KafkaSettings):
    return create_ssl_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)


def client_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client (producer, consumer, admin): bootstrap list and security."""
    kafka = settings.kafka
    options: dict[str, Any] = {"bootstrap_servers": require_bootstrap(settings),
                               "security_protocol": kafka.security_protocol}
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL_"):
        options.update(sasl_mechanism=kafka.sasl_mechanism, sasl_plain_username=kafka.sasl_username,
                       sasl_plain_password=kafka.sasl_password)
    return options


def faust_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """The same security for a Faust app (`broker_credentials`); None for PLAINTEXT."""
    kafka = settings.kafka
    if kafka.security_protocol.startswith("SASL_"):
        context = _ssl_context(kafka) if kafka.security_protocol == "SASL_SSL" else None
        return faust.SASLCredentials(username=kafka.sasl_username, password=kafka.sasl_password,
                                     ssl_context=context, mechanism=kafka.sasl_mechanism)
    if kafka.security_protocol == "SSL":
        return faust.SSLCredentials(_ssl_context(kafka))
    return None
