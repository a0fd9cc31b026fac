"""Service discovery: one registry interface (register, deregister, healthy, watch) with three backends —
Kafka-native (signed heartbeats on ``registry.v1``, the default), etcd (leases over its HTTP/JSON gateway) and
Consul (``py-consul``) — plus heartbeats with TCP checks and a Prometheus HTTP service-discovery endpoint.

It knows no roles: kiosks and cloud workers describe themselves with a service name and metadata.
"""

from streams.discovery._announce import (
    announce,
    announce_service,
    bootstrap_from_registry,
    endpoints_from_registry,
    follow_groups,
    groups_from_registry,
    metrics_endpoint,
)
from streams.discovery._base import RegistryBase
from streams.discovery._consul import ConsulRegistry
from streams.discovery._etcd import EtcdRegistry
from streams.discovery._etcd_server import EtcdNotFound, EtcdServer, EtcdServerConfig, find_etcd
from streams.discovery._heartbeat import Heartbeat, tcp_check
from streams.discovery._kafka import KafkaRegistry
from streams.discovery._model import Check, Instance, Registry, group_members
from streams.discovery._sd import SdServer, sd_targets
from streams.discovery._settings import RegistrySettings, open_registry

__all__ = [
    "Check",
    "ConsulRegistry",
    "EtcdNotFound",
    "EtcdRegistry",
    "EtcdServer",
    "EtcdServerConfig",
    "Heartbeat",
    "Instance",
    "KafkaRegistry",
    "Registry",
    "RegistryBase",
    "RegistrySettings",
    "SdServer",
    "announce",
    "announce_service",
    "bootstrap_from_registry",
    "endpoints_from_registry",
    "find_etcd",
    "follow_groups",
    "group_members",
    "groups_from_registry",
    "metrics_endpoint",
    "open_registry",
    "sd_targets",
    "tcp_check",
]
