"""The envelope checks as a FastStream decoder: every record becomes exactly one verdict, never an exception.

Order as in the spec (``docs/ENVELOPE.md``): parse, signature, chain/sequence, then decrypt and decode. A record
that passes the chain check advances the chain even if its payload then fails (it is authentic and in order)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import ConsumerRecord
from google.protobuf.message import Message
from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from schemas import MedicalRecord, RejectReason
from streams import (
    ChainTracker,
    ChainVerdict,
    EnvelopeRejected,
    Keyring,
    decode_payload,
    decrypt,
    envelope_hash,
    parse,
    verify_signature,
)

__all__ = ["Accepted", "Duplicate", "EnvelopeDecoder", "Rejected", "Verdict", "internal_error"]

log = logging.getLogger(__name__)


class _Opaque:
    """Lets a handler annotate its body with a verdict: pydantic checks the type only (the decoder built it)."""

    __slots__ = ()

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.is_instance_schema(cls)


@dataclass(frozen=True, slots=True)
class Accepted(_Opaque):
    """Authentic, in sequence, decrypted and decoded."""

    record: ConsumerRecord[bytes, bytes]
    envelope: MedicalRecord
    digest: bytes
    message: Message


@dataclass(frozen=True, slots=True)
class Duplicate(_Opaque):
    """The same envelope again (at-least-once delivery): counted, not delivered twice."""

    record: ConsumerRecord[bytes, bytes]
    envelope: MedicalRecord


@dataclass(frozen=True, slots=True)
class Rejected(_Opaque):
    """Goes to ``dlq.v1`` with ``error.reason``."""

    record: ConsumerRecord[bytes, bytes]
    error: EnvelopeRejected


Verdict = Accepted | Duplicate | Rejected


def internal_error(exc: BaseException, *, producer_id: str = "", seq: int = 0) -> EnvelopeRejected:
    """An unexpected exception as a rejection (a dead letter, never a crash)."""
    return EnvelopeRejected(
        RejectReason.REJECT_REASON_INTERNAL_ERROR,
        f"{type(exc).__name__}: {exc}",
        producer_id=producer_id,
        seq=seq,
    )


class EnvelopeDecoder:
    """Callable as a FastStream ``decoder``: takes the ``KafkaMessage`` and returns a ``Verdict``.

    Holds the chain state of every (producer, stream) this subscriber has seen, so one instance belongs to one
    subscriber (FastStream hands it records one at a time, in partition order)."""

    def __init__(self, keyring: Keyring, *, decrypt: bool = True, window: int = 4096) -> None:
        self._keyring = keyring
        self._decrypt = decrypt
        self.chain = ChainTracker(window)

    def __call__(self, msg: Any) -> Verdict:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message
        return self.verdict(record)

    def verdict(self, record: ConsumerRecord[bytes, bytes]) -> Verdict:
        rec: MedicalRecord | None = None
        try:
            rec = parse(record.value or b"")
            verify_signature(rec, self._keyring)
            digest = envelope_hash(rec)
            if self.chain.check(rec, digest) is ChainVerdict.DUPLICATE:
                return Duplicate(record, rec)
            self.chain.accept(rec, digest)
            payload = decrypt(rec, self._keyring) if self._decrypt else rec.encrypted_data
            return Accepted(record, rec, digest, decode_payload(rec, payload))
        except EnvelopeRejected as exc:
            return Rejected(record, exc)
        except Exception as exc:
            log.exception("unexpected error verifying %s@%d:%d", record.topic, record.partition, record.offset)
            return Rejected(
                record,
                internal_error(exc, producer_id=rec.producer_id if rec else "", seq=rec.seq if rec else 0),
            )
