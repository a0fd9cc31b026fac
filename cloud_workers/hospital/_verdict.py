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
from streams import ChainTracker, EnvelopeRejected, Keyring, RecordPipeline
from streams import Duplicate as Duplicate_
from streams import Rejected as Rejected_

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
    """Authentic, in sequence, allowed on its topic, decrypted and decoded."""

    record: ConsumerRecord[bytes, bytes]
    envelope: MedicalRecord
    digest: bytes
    #: The decoded inner message; ``None`` for a subscriber that verifies only (an auditor).
    message: Message | None
    #: The envelope restarted its producer's chain at seq 1 (a kiosk that lost its state).
    reset: bool = False


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


def internal_error(
    exc: BaseException, *, producer_id: str = "", seq: int = 0, withhold_message: bool = False
) -> EnvelopeRejected:
    """An unexpected exception as a rejection (a dead letter, never a crash). ``withhold_message``: the exception
    was raised with decrypted data in hand, so only its type goes into the (unencrypted) dead letter."""
    detail = (
        f"{type(exc).__name__} (message withheld: raised on decrypted data)"
        if withhold_message
        else f"{type(exc).__name__}: {exc}"
    )
    return EnvelopeRejected(RejectReason.REJECT_REASON_INTERNAL_ERROR, detail[:1000], producer_id=producer_id, seq=seq)


class EnvelopeDecoder:
    """Callable as a FastStream ``decoder``: takes the ``KafkaMessage`` and returns a ``Verdict``.

    The checks are the bus's own per-record path (``streams.RecordPipeline``: size and header limits, the
    topic's catalog policy, signature, chain/dedupe, decrypt, decode); this class only keeps the Kafka record
    with the outcome. It holds the chain state of every (producer, stream) this subscriber has seen, so one
    instance belongs to one subscriber (FastStream hands it records one at a time, in partition order)."""

    def __init__(self, keyring: Keyring, *, decrypt: bool = True, window: int = 4096) -> None:
        self.chain = ChainTracker(window)
        self.pipeline = RecordPipeline(keyring, self.chain, decrypt=decrypt)
        self._decrypt = decrypt

    def __call__(self, msg: Any) -> Verdict:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message
        return self.verdict(record)

    def verdict(self, record: ConsumerRecord[bytes, bytes]) -> Verdict:
        try:
            outcome = self.pipeline.open(record.topic, record.partition, record.value)
            if isinstance(outcome, Rejected_):
                return Rejected(record, outcome.error)
            if isinstance(outcome, Duplicate_):
                return Duplicate(record, outcome.envelope)
            if outcome.message is None and self._decrypt:
                raise RuntimeError("the pipeline returned no message")
            return Accepted(record, outcome.envelope, outcome.digest, outcome.message, reset=outcome.reset)
        except Exception as exc:  # RecordPipeline never raises; this keeps the guarantee if that changes
            log.exception("unexpected error verifying %s@%d:%d", record.topic, record.partition, record.offset)
            return Rejected(record, internal_error(exc))
