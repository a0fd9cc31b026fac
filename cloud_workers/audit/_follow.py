"""``medkiosk audit follow``: an auditor's live view as a FastStream app.

``audit.v1`` is verified like every envelope topic (signature, chain, catalog policy; its envelopes are signed,
not encrypted, so no data key is involved) and each AuditRecord becomes one JSON line; records that fail go to
``dlq.v1`` with their reason. With ``dlq=True`` it also follows ``dlq.v1`` itself: dead letters are not signed
(any worker writes them), so they are parsed and shown, never "verified". Bounded re-reads of a range stay with
``audit replay`` on aiokafka: FastStream subscribes to a group's position, it has no offset or time range."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import DecodeError
from pydantic import WithJsonSchema

from cloud_workers.hospital import Accepted, VerifiedSubscriber, VerifiedSubscriberConfig, kafka_broker
from cloud_workers.hospital._spec_schemas import DEAD_LETTER_SCHEMA, audit_envelope_schema
from schemas import DeadLetter
from streams import AUDIT, DLQ, BusMetrics, BusSettings, Keyring, reason_label

__all__ = ["AuditFollower", "AuditFollowerConfig", "audit_to_json", "dead_letter_to_json"]

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(kw_only=True)
class AuditFollowerConfig:
    group_id: str = "medkiosk-auditor"
    #: Also follow ``dlq.v1``.
    dlq: bool = False
    audit_topic: str = AUDIT.name
    dlq_topic: str = DLQ.name
    #: Chain state of the gateways' audit chains across restarts (``streams.ChainStore``); ``None``: memory only.
    state_path: Path | None = None


def audit_to_json(event: Accepted) -> dict[str, Any]:
    """One verified audit record as a JSON-ready dict."""
    env, rec = event.envelope, event.record
    return {
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "signed_by": env.producer_id,
        "seq": env.seq,
        "audit": None if event.message is None else MessageToDict(event.message, preserving_proto_field_name=True),
    }


def dead_letter_to_json(raw: bytes, partition: int, offset: int) -> dict[str, Any]:
    """One dead letter as a JSON-ready dict (the refused bytes themselves are left out)."""
    try:
        letter = DeadLetter.FromString(raw)
    except DecodeError as exc:
        return {"topic": DLQ.name, "partition": partition, "offset": offset, "unreadable": str(exc)}
    body = MessageToDict(letter, preserving_proto_field_name=True)
    body.pop("value", None)
    body.pop("key", None)
    return {
        "topic": DLQ.name,
        "partition": partition,
        "offset": offset,
        "reason": reason_label(letter.reason),
        "dead_letter": body,
    }


class AuditFollower:
    """The auditor's FastStream app: ``audit.v1`` verified, optionally ``dlq.v1`` shown; JSON lines to ``emit``."""

    def __init__(
        self, config: AuditFollowerConfig, settings: BusSettings, keyring: Keyring, metrics: BusMetrics, emit: Emit
    ) -> None:
        self.config = config
        self._emit = emit
        self.dead_letters_seen = 0
        self.broker = kafka_broker(
            settings,
            settings.client_id,
            description="What an auditor consumes: the gateway's signed audit trail, and the dead letters.",
        )

        async def sink(event: Accepted) -> None:
            await emit(audit_to_json(event))

        self.audit = VerifiedSubscriber(
            VerifiedSubscriberConfig(
                topic=config.audit_topic,
                group_id=config.group_id,
                worker="auditor",
                decrypt=True,  # audit envelopes are not encrypted: this decodes, no data key is involved
                title=config.audit_topic,
                description=_AUDIT_DOC,
                payload_schema=audit_envelope_schema(),
                state_path=config.state_path,
            ),
            self.broker,
            settings,
            keyring,
            metrics,
            sink,
        )
        if config.dlq:
            self._add_dlq_subscriber(settings)

    def _add_dlq_subscriber(self, settings: BusSettings) -> None:
        subscriber = self.broker.subscriber(
            self.config.dlq_topic,
            group_id=self.config.group_id,
            auto_offset_reset="earliest",
            ack_policy=AckPolicy.MANUAL,
            decoder=lambda msg: msg.raw_message,
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            title=self.config.dlq_topic,
            description=_DLQ_DOC,
        )

        async def on_dead_letter(body: Any, msg: KafkaMessage) -> None:
            await self._emit(dead_letter_to_json(body.value or b"", body.partition, body.offset))
            self.dead_letters_seen += 1
            await msg.ack()

        on_dead_letter.__annotations__ = {
            "body": Annotated[Any, WithJsonSchema(DEAD_LETTER_SCHEMA)],
            "msg": KafkaMessage,
            "return": None,
        }
        self.dlq_subscriber = subscriber(on_dead_letter)

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        self.audit.request_stop()
        try:
            await self.audit.drain()
            await self.broker.stop()
        finally:
            self.audit.close()

    async def __aenter__(self) -> AuditFollower:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def stats(self) -> dict[str, Any]:
        return {**self.audit.stats(), "dead_letters_seen": self.dead_letters_seen}


_AUDIT_DOC = (
    "audit.v1: one AuditRecord per envelope the gateway verified and routed (its header, envelope hash and chain "
    "link), each in an envelope signed by the gateway and chained per gateway. Key: the gateway's producer id. "
    "No Kafka headers. Not encrypted: no patient data. Kept forever (retention -1, never compacted)."
)
_DLQ_DOC = (
    "dlq.v1: every record a worker refused, kept whole with the reason (schemas.v1.RejectReason), the worker, the "
    "source topic/partition/offset and, when known, producer and seq. Key: the source topic. Binary protobuf "
    "schemas.v1.DeadLetter, not enveloped and not signed. Workers' FastStream publishers add correlation_id and "
    "content-type headers; readers must not rely on any header."
)
