"""The bus: topic catalog, envelope (encrypt/sign/verify/chain), chunking, outbox, consumers, DLQ,
metrics and settings. Everything that talks to Kafka goes through here."""

from streams._admin import TopicReport, apply_topics
from streams._catalog import (
    AUDIT,
    CATALOG,
    CONTROL_SCALING,
    DLQ,
    FL_AGGREGATES,
    FL_MODELS,
    FL_ROUNDS,
    FL_SUMS,
    FL_UPDATES,
    KIOSK_IDENTITY,
    KIOSK_INFERENCE,
    KIOSK_TELEMETRY,
    FlTopics,
    TopicSpec,
    hospital_topic,
    topics_for,
)
from streams._chain import ChainTracker, ChainVerdict
from streams._chunking import DEFAULT_CHUNK_SIZE, Reassembler, split_payload
from streams._consumer import ConsumerConfig, EnvelopeConsumer, Retryable, VerifiedEvent, run_consumer
from streams._envelope import (
    GENESIS_HASH,
    ChainState,
    Opened,
    decode_payload,
    decrypt,
    envelope_hash,
    header_bytes,
    open_envelope,
    parse,
    seal,
    verify_signature,
)
from streams._errors import EnvelopeRejected, reason_label
from streams._keys import DataKey, Keyring, ProducerInfo, SigningKey, export_role, init_dev_keys
from streams._metrics import BusMetrics, serve_metrics
from streams._outbox import Outbox, OutboxRow, SealRequest
from streams._reader import LogEvent, LogReader, SeqDedupe
from streams._runtime import StatsFile, configure_logging, run_until_stopped
from streams._sender import OutboxSender, make_producer
from streams._settings import BusSettings
from streams._tasks import supervise

__all__ = [
    "AUDIT",
    "CATALOG",
    "CONTROL_SCALING",
    "DEFAULT_CHUNK_SIZE",
    "DLQ",
    "FL_AGGREGATES",
    "FL_MODELS",
    "FL_ROUNDS",
    "FL_SUMS",
    "FL_UPDATES",
    "GENESIS_HASH",
    "KIOSK_IDENTITY",
    "KIOSK_INFERENCE",
    "KIOSK_TELEMETRY",
    "BusMetrics",
    "BusSettings",
    "ChainState",
    "ChainTracker",
    "ChainVerdict",
    "ConsumerConfig",
    "DataKey",
    "EnvelopeConsumer",
    "EnvelopeRejected",
    "FlTopics",
    "Keyring",
    "LogEvent",
    "LogReader",
    "Opened",
    "Outbox",
    "OutboxRow",
    "OutboxSender",
    "ProducerInfo",
    "Reassembler",
    "Retryable",
    "SealRequest",
    "SeqDedupe",
    "SigningKey",
    "StatsFile",
    "TopicReport",
    "TopicSpec",
    "VerifiedEvent",
    "apply_topics",
    "configure_logging",
    "decode_payload",
    "decrypt",
    "envelope_hash",
    "export_role",
    "header_bytes",
    "hospital_topic",
    "init_dev_keys",
    "make_producer",
    "open_envelope",
    "parse",
    "reason_label",
    "run_consumer",
    "run_until_stopped",
    "seal",
    "serve_metrics",
    "split_payload",
    "supervise",
    "topics_for",
    "verify_signature",
]
