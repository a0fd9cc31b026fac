"""The per-record path every consumer shares, with a total outcome: whatever the bytes, a record ends as
exactly one of ``Accepted``, ``Duplicate`` or ``Rejected`` (with a reason). Pure apart from the chain state
it advances: no Kafka in it, so the fuzz tests drive it directly.

Order of checks (cheapest first, nothing used before it is checked): size and header ranges (``parse``),
the topic's catalog policy (stream, encryption, schema), producer and signature, chain/dedupe, then
decrypt and decode. Any unexpected exception is ``internal_error`` with its type and message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from google.protobuf.message import Message

from schemas import Encryption, MedicalRecord, RejectReason
from streams._catalog import TopicSpec, spec_for
from streams._chain import ChainVerdict
from streams._envelope import (
    DEFAULT_LIMITS,
    EnvelopeLimits,
    decode_payload,
    decrypt,
    envelope_hash,
    header_bytes,
    parse,
    verify_signature,
)
from streams._errors import EnvelopeRejected
from streams._keys import Keyring

__all__ = [
    "Accepted",
    "Duplicate",
    "Outcome",
    "RecordPipeline",
    "Rejected",
    "Sequencer",
    "check_policy",
    "check_role",
]


class Sequencer(Protocol):
    """``ChainTracker`` (full chain order) or ``SeqDedupe`` (dedupe only)."""

    def check(self, rec: MedicalRecord, digest: bytes) -> ChainVerdict: ...

    def accept(self, rec: MedicalRecord, digest: bytes, *, source: str = "") -> None: ...


@dataclass(frozen=True, slots=True)
class Accepted:
    envelope: MedicalRecord
    digest: bytes
    #: The decoded inner message; ``None`` when the pipeline does not decrypt (the gateway).
    message: Message | None
    #: The envelope restarted its producer's chain (see ``ChainVerdict.RESET``).
    reset: bool = False


@dataclass(frozen=True, slots=True)
class Duplicate:
    envelope: MedicalRecord


@dataclass(frozen=True, slots=True)
class Rejected:
    error: EnvelopeRejected


Outcome = Accepted | Duplicate | Rejected


def internal_error(exc: BaseException, rec: MedicalRecord | None = None) -> EnvelopeRejected:
    """The rejection for an unexpected exception (its type and message kept in the detail)."""
    return EnvelopeRejected(
        RejectReason.REJECT_REASON_INTERNAL_ERROR,
        f"{type(exc).__name__}: {exc}"[:1000],
        producer_id=rec.producer_id if rec is not None else "",
        seq=rec.seq if rec is not None else 0,
    )


def check_policy(rec: MedicalRecord, topic: str) -> TopicSpec:
    """The catalog's rules for ``topic``: the signed stream belongs here, encryption if required, schema.
    Returns the governing spec (its producer-role rule is checked once the signature holds)."""
    spec = spec_for(topic)
    if not spec.allows_stream(rec.stream, topic):
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_WRONG_STREAM,
            f"stream {rec.stream!r} may not be read from {topic}",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    if spec.encrypted and rec.encryption != Encryption.ENCRYPTION_AES256_GCM:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_PLAINTEXT_REFUSED,
            f"{topic} carries patient data: envelopes must be AES-256-GCM encrypted",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    if spec.schemas and rec.schema not in spec.schemas:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_WRONG_SCHEMA,
            f"{rec.schema} does not belong on {topic} (carries {', '.join(spec.schemas)})",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    return spec


def check_role(rec: MedicalRecord, spec: TopicSpec, keyring: Keyring) -> None:
    """Only producers of the spec's roles may publish on the topic (a cloud service key cannot pose as a kiosk)."""
    if not spec.roles:
        return
    info = keyring.producers.get(rec.producer_id)
    role = info.role if info is not None else ""
    if role not in spec.roles:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_UNAUTHORIZED,
            f"a {role or 'unregistered'} producer may not publish on {spec.name} (needs {', '.join(spec.roles)})",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )


class RecordPipeline:
    """Verifies one record at a time against a keyring, the catalog and a sequencer."""

    def __init__(
        self,
        keyring: Keyring,
        sequencer: Sequencer,
        *,
        decrypt: bool = True,
        limits: EnvelopeLimits = DEFAULT_LIMITS,
        policy: bool = True,
    ) -> None:
        self._keyring = keyring
        self.sequencer = sequencer
        self._decrypt = decrypt
        self._limits = limits
        self._policy = policy

    def open(self, topic: str, partition: int, value: bytes | None) -> Outcome:
        """The outcome of one record read from ``topic``/``partition``; never raises."""
        rec: MedicalRecord | None = None
        try:
            rec = parse(value or b"", self._limits)
            spec = check_policy(rec, topic) if self._policy else None
            header = header_bytes(rec)
            data_digest = hashlib.sha256(rec.encrypted_data).digest()
            verify_signature(rec, self._keyring, header=header, data_digest=data_digest)
            if spec is not None:
                check_role(rec, spec, self._keyring)
            digest = envelope_hash(rec, header=header, data_digest=data_digest)
            verdict = self.sequencer.check(rec, digest)
            if verdict is ChainVerdict.DUPLICATE:
                return Duplicate(rec)
            # Authentic and in sequence: from here on the chain advances even if the payload is bad.
            self.sequencer.accept(rec, digest, source=f"{topic}/{partition}")
            message = decode_payload(rec, decrypt(rec, self._keyring, header=header)) if self._decrypt else None
            return Accepted(rec, digest, message, reset=verdict is ChainVerdict.RESET)
        except EnvelopeRejected as exc:
            return Rejected(exc)
        except Exception as exc:
            return Rejected(internal_error(exc, rec))
