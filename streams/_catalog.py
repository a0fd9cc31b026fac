"""The topic catalog: the single source of truth for names, keys, partitions, retention and cleanup."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "AUDIT",
    "CATALOG",
    "CONTROL_SCALING",
    "DLQ",
    "FL_AGGREGATES",
    "FL_MODELS",
    "FL_ROUNDS",
    "FL_SUMS",
    "FL_UPDATES",
    "GATEWAY_CHAINS",
    "KIOSK_IDENTITY",
    "KIOSK_INFERENCE",
    "KIOSK_TELEMETRY",
    "REGISTRY",
    "TRAINING_REQUESTS",
    "FlTopics",
    "TopicSpec",
    "hospital_topic",
    "spec_for",
    "topics_for",
]

_DAY_MS = 24 * 3600 * 1000
_HOSPITAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, kw_only=True, slots=True)
class TopicSpec:
    name: str
    key: str
    content: str
    cleanup: Literal["delete", "compact"] = "delete"
    #: Milliseconds; -1 keeps forever.
    retention_ms: int = 7 * _DAY_MS
    #: ``None``: the settings' default partition count.
    partitions: int | None = None
    #: Full protobuf names of the inner messages the topic carries; empty: any known schema.
    schemas: tuple[str, ...] = ()
    #: Envelopes must be AES-256-GCM encrypted (patient data); ``ENCRYPTION_NONE`` is ``plaintext_refused``.
    encrypted: bool = False
    #: The signed ``stream`` values allowed here. ``None``: only the topic's own name (a first-hop topic, where
    #: the producer published directly); a routed topic lists the streams that feed it.
    streams: tuple[str, ...] | None = None
    #: Registry roles (``kiosk``, ``service``) whose envelopes the topic accepts; empty: any registered producer.
    roles: tuple[str, ...] = ()

    def allows_stream(self, stream: str, topic: str) -> bool:
        """Whether an envelope whose signed stream is ``stream`` may be read from ``topic`` (this spec's topic).
        A routed topic also admits the ``.<suffix>`` variants of its feeding streams (isolated runs)."""
        if self.streams is None:
            return stream == topic
        return any(stream == s or stream.startswith(s + ".") for s in self.streams)

    def configs(self) -> dict[str, str]:
        cfg: dict[str, str] = {"cleanup.policy": self.cleanup}
        if self.cleanup == "delete":
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


_IDENTITY_CHECK = "schemas.v1.IdentityCheck"
_INFERENCE_RESULT = "schemas.v1.InferenceResult"

KIOSK_IDENTITY = TopicSpec(
    name="kiosk.identity.v1",
    key="kiosk id",
    content="fused identity checks",
    schemas=(_IDENTITY_CHECK,),
    encrypted=True,
    roles=("kiosk",),
)
KIOSK_INFERENCE = TopicSpec(
    name="kiosk.inference.v1",
    key="kiosk id",
    content="triage inference results",
    schemas=(_INFERENCE_RESULT,),
    encrypted=True,
    roles=("kiosk",),
)
KIOSK_TELEMETRY = TopicSpec(
    name="kiosk.telemetry.v1",
    key="kiosk id",
    content="load, latency, queue depth, heartbeats",
    retention_ms=_DAY_MS,
    schemas=("schemas.v1.Telemetry",),
)
FL_ROUNDS = TopicSpec(
    name="fl.rounds.v1", key="model name", content="round announcements and closes", cleanup="compact"
)
FL_UPDATES = TopicSpec(
    name="fl.updates.v1",
    key="model/round/shard",
    content="encrypted packed updates (chunked)",
    retention_ms=3 * _DAY_MS,
)
FL_SUMS = TopicSpec(
    name="fl.sums.v1",
    key="model/round/shard",
    content="update receipts and encrypted sums (aggregator -> coordinator, keyholder)",
    retention_ms=3 * _DAY_MS,
)
FL_AGGREGATES = TopicSpec(
    name="fl.aggregates.v1",
    key="model name",
    content="decrypted aggregates, encrypted for the coordinator (keyholder -> coordinator)",
    retention_ms=3 * _DAY_MS,
)
FL_MODELS = TopicSpec(name="fl.models.v1", key="model name", content="global model versions", cleanup="compact")
CONTROL_SCALING = TopicSpec(
    name="control.scaling.v1", key="target", content="scaling commands", schemas=("schemas.v1.ScalingCommand",)
)
AUDIT = TopicSpec(
    name="audit.v1",
    key="producer id",
    content="envelope headers + chain links",
    retention_ms=-1,
    schemas=("schemas.v1.AuditRecord",),
)
DLQ = TopicSpec(name="dlq.v1", key="source topic", content="rejected messages with reasons", retention_ms=30 * _DAY_MS)
REGISTRY = TopicSpec(
    name="registry.v1",
    key="service/instance",
    content="signed discovery heartbeats (Kafka-native registry; readers apply the TTL)",
    cleanup="compact",
    schemas=("schemas.v1.ServiceInstance",),
)
TRAINING_REQUESTS = TopicSpec(
    name="training.requests.v1",
    key="model name",
    content="signed retraining requests to the multimodal trainer",
    schemas=("schemas.v1.TrainingRequest",),
)

GATEWAY_CHAINS = TopicSpec(
    name="gateway.chains.v1",
    key="producer id / stream",
    content="the gateways' committed chain state (transactional mode): read back on every partition assignment",
    cleanup="compact",
)

CATALOG: tuple[TopicSpec, ...] = (
    KIOSK_IDENTITY,
    KIOSK_INFERENCE,
    KIOSK_TELEMETRY,
    FL_ROUNDS,
    FL_UPDATES,
    FL_SUMS,
    FL_AGGREGATES,
    FL_MODELS,
    CONTROL_SCALING,
    AUDIT,
    DLQ,
    REGISTRY,
    TRAINING_REQUESTS,
    GATEWAY_CHAINS,
)


@dataclass(frozen=True, kw_only=True, slots=True)
class FlTopics:
    """The names of the federated-learning topics one training run uses (the catalog's by default)."""

    rounds: str = FL_ROUNDS.name
    updates: str = FL_UPDATES.name
    sums: str = FL_SUMS.name
    aggregates: str = FL_AGGREGATES.name
    models: str = FL_MODELS.name

    @classmethod
    def suffixed(cls, suffix: str) -> FlTopics:
        """The catalog's names with ``.<suffix>`` appended (isolated runs on a shared broker, e.g. tests)."""
        return cls(**{name: f"{value}.{suffix}" for name, value in _fl_names(cls()).items()})

    def specs(self) -> list[TopicSpec]:
        """Topic specs (the catalog's settings under these names), for ``apply_topics``."""
        base = {
            "rounds": FL_ROUNDS,
            "updates": FL_UPDATES,
            "sums": FL_SUMS,
            "aggregates": FL_AGGREGATES,
            "models": FL_MODELS,
        }
        return [
            TopicSpec(
                name=name,
                key=base[field].key,
                content=base[field].content,
                cleanup=base[field].cleanup,
                retention_ms=base[field].retention_ms,
                partitions=base[field].partitions,
            )
            for field, name in _fl_names(self).items()
        ]


def _fl_names(topics: FlTopics) -> dict[str, str]:
    return {
        "rounds": topics.rounds,
        "updates": topics.updates,
        "sums": topics.sums,
        "aggregates": topics.aggregates,
        "models": topics.models,
    }


def hospital_topic(hospital_id: str) -> str:
    """``hospital.<hospital_id>.events.v1``: what one hospital may see."""
    if not _HOSPITAL.match(hospital_id):
        raise ValueError(f"invalid hospital id {hospital_id!r}")
    return f"hospital.{hospital_id}.events.v1"


_BY_NAME = {spec.name: spec for spec in CATALOG}


def _hospital_spec(hospital_id: str) -> TopicSpec:
    return TopicSpec(
        name=hospital_topic(hospital_id),
        key="kiosk id",
        content=f"events of hospital {hospital_id}",
        schemas=(_IDENTITY_CHECK, _INFERENCE_RESULT),
        encrypted=True,
        streams=(KIOSK_IDENTITY.name, KIOSK_INFERENCE.name),
        roles=("kiosk",),
    )


_HOSPITAL_TOPIC = re.compile(r"^hospital\.([A-Za-z0-9][A-Za-z0-9._-]{0,63})\.events\.v1$")


def spec_for(topic: str) -> TopicSpec:
    """The catalog entry that governs ``topic``: an exact name, a hospital's events topic, or a catalog name
    with a ``.<suffix>`` (isolated runs such as ``FlTopics.suffixed``). A topic the catalog does not know
    gets the permissive default: any schema, no encryption requirement, stream equal to the topic."""
    known = _BY_NAME.get(topic)
    if known is not None:
        return known
    found = _HOSPITAL_TOPIC.match(topic)
    if found:
        return _hospital_spec(found.group(1))
    for spec in CATALOG:
        if topic.startswith(spec.name + "."):
            return spec
    return TopicSpec(name=topic, key="", content="not in the catalog")


def topics_for(hospitals: list[str]) -> list[TopicSpec]:
    """The fixed catalog plus one events topic per hospital."""
    return [*CATALOG, *(_hospital_spec(h) for h in hospitals)]
