"""Which registry a process uses: ``MEDKIOSK_REGISTRY_*`` settings and one factory for every backend."""

from __future__ import annotations

from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

from streams._catalog import REGISTRY
from streams._keys import Keyring
from streams._metrics import BusMetrics
from streams._settings import BusSettings
from streams.discovery._base import RegistryBase

__all__ = ["RegistrySettings", "open_registry"]


class RegistrySettings(BaseSettings):
    """``backend``: ``kafka`` (default: signed heartbeats on ``registry.v1``, nothing else to run), ``etcd``,
    ``consul``, or ``none`` (do not register)."""

    model_config = SettingsConfigDict(env_prefix="MEDKIOSK_REGISTRY_", extra="ignore")

    backend: Literal["kafka", "etcd", "consul", "none"] = "kafka"
    #: How long an instance stays healthy after its last heartbeat (it beats every third of this).
    ttl_s: float = 10.0
    topic: str = REGISTRY.name
    etcd_url: str = "http://127.0.0.1:2379"
    etcd_prefix: str = "/medkiosk/registry/"
    consul_host: str = "127.0.0.1"
    consul_port: int = 8500
    #: Take the Kafka bootstrap list from this service's healthy instances (etcd or Consul backends only).
    bootstrap_service: str | None = None
    #: Let group membership (``group:<name>`` targets) follow what the instances announce (``groups_from_registry``).
    follow_groups: bool = False


def open_registry(
    settings: RegistrySettings,
    *,
    bus: BusSettings | None = None,
    keyring: Keyring | None = None,
    metrics: BusMetrics | None = None,
    producer_id: str | None = None,
) -> RegistryBase:
    """The configured backend (not started). The Kafka backend needs ``bus`` and ``keyring`` (and
    ``producer_id`` to register: heartbeats are signed with that producer's key)."""
    if settings.backend == "kafka":
        from streams.discovery._kafka import KafkaRegistry

        if bus is None or keyring is None:
            raise ValueError("the kafka registry needs bus settings and a keyring")
        return KafkaRegistry(bus, keyring, metrics, producer_id=producer_id, topic=settings.topic)
    if settings.backend == "etcd":
        from streams.discovery._etcd import EtcdRegistry

        return EtcdRegistry(settings.etcd_url, prefix=settings.etcd_prefix)
    if settings.backend == "consul":
        from streams.discovery._consul import ConsulRegistry

        return ConsulRegistry(settings.consul_host, settings.consul_port)
    raise ValueError(f"registry backend {settings.backend!r} cannot be opened")
