"""Bus settings: one place, read from ``MEDKIOSK_*`` environment variables (never at import time)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any, Literal

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["BusSettings"]


class BusSettings(BaseSettings):
    """Where the brokers are, how to reach them, and where this process keeps keys and state.

    Every component takes its bootstrap servers from here, so pointing the system at a real Kafka
    cluster is a matter of ``MEDKIOSK_BOOTSTRAP_SERVERS=kafka-1:9092,kafka-2:9092`` and, for a secured
    cluster, the ``MEDKIOSK_SECURITY_PROTOCOL`` / ``MEDKIOSK_SASL_*`` / ``MEDKIOSK_SSL_*`` variables.
    """

    model_config = SettingsConfigDict(env_prefix="MEDKIOSK_", extra="ignore")

    bootstrap_servers: str = "127.0.0.1:19092"
    client_id: str = "medkiosk"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    keys_dir: Path = Path(".medkiosk/keys")
    state_dir: Path = Path(".medkiosk/state")
    #: Port of this process's Prometheus ``/metrics`` endpoint; ``None`` or 0 turns it off.
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"

    topic_partitions: int = 3
    replication_factor: int = 1
    request_timeout_ms: int = 10_000
    #: How long the broker may hold a fetch waiting for data: the floor of per-hop latency.
    fetch_max_wait_ms: int = 20
    #: Idempotent producers (the broker drops a retried batch it already has). Needs a broker that grants
    #: InitProducerId: Apache Kafka does; the embedded Tansu broker refuses it, so the default is off.
    enable_idempotence: bool = False
    #: What consumers built with :meth:`consumer_kwargs` see of transactional producers' records.
    isolation_level: Literal["read_uncommitted", "read_committed"] = "read_uncommitted"

    #: Largest record a consumer will parse (chunks are 512 KiB, so genuine envelopes stay well below).
    max_record_bytes: int = 1024 * 1024
    #: Largest identifier (hospital, producer, key id, schema, stream) a consumer accepts.
    max_field_bytes: int = 256
    #: Bytes of a rejected record's value kept in its dead letter (the rest: length + SHA-256).
    dlq_max_value_bytes: int = 64 * 1024

    def consumer_kwargs(self) -> dict[str, Any]:
        """:meth:`kafka_kwargs` plus what only consumers take (``isolation_level``)."""
        return {**self.kafka_kwargs(), "isolation_level": self.isolation_level}

    def kafka_kwargs(self) -> dict[str, Any]:
        """Connection keyword arguments shared by aiokafka producers, consumers and admin clients."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(cafile=str(self.ssl_cafile) if self.ssl_cafile else None)
            if self.ssl_certfile:
                context.load_cert_chain(str(self.ssl_certfile), str(self.ssl_keyfile) if self.ssl_keyfile else None)
            kwargs["ssl_context"] = context
        if self.security_protocol.startswith("SASL"):
            kwargs["sasl_mechanism"] = self.sasl_mechanism or "PLAIN"
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = self.sasl_password.get_secret_value() if self.sasl_password else None
        return kwargs
