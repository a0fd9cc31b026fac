"""Model updates as they travel: chunk envelopes -> one ``ModelUpdate``, remembering where each part lies.

The aggregator assembles updates as they stream in (:class:`UpdateAssembler`); the keyholder re-assembles a
contributor's update from the exact records an encrypted sum names (:func:`assemble_parts`). Both yield the
SHA-256 of the serialized update, which names it everywhere (receipts, the round's close, sums).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aiokafka.structs import ConsumerRecord
from google.protobuf.message import DecodeError

from schemas import Chunk, EnvelopeRef, ModelUpdate, RejectReason
from streams import EnvelopeRejected, LogEvent, Reassembler

__all__ = [
    "AssembledUpdate",
    "IncompleteUpdate",
    "UpdateAssembler",
    "assemble_parts",
    "contributors_digest",
    "envelope_ref",
    "parse_update",
]

_UPDATE_SCHEMA = ModelUpdate.DESCRIPTOR.full_name


@dataclass(frozen=True, slots=True)
class IncompleteUpdate:
    """A chunked update the assembler gave up on: who sent it, the records of the chunks that came, and why."""

    producer_id: str
    records: tuple[ConsumerRecord[bytes, bytes], ...]
    detail: str


@dataclass(frozen=True, slots=True)
class AssembledUpdate:
    """A complete update, who signed it, and the envelopes it arrived in (in chunk order)."""

    update: ModelUpdate
    sha256: bytes
    producer_id: str
    hospital_id: str
    parts: tuple[EnvelopeRef, ...]
    #: The record that completed the update (what a dead letter for it carries).
    record: ConsumerRecord[bytes, bytes]


def envelope_ref(event: LogEvent) -> EnvelopeRef:
    """Where ``event``'s envelope lies, and its hash."""
    r = event.record
    return EnvelopeRef(topic=r.topic, partition=r.partition, offset=r.offset, envelope_sha256=event.digest)


def parse_update(payload: bytes, *, producer_id: str = "", seq: int = 0) -> ModelUpdate:
    """Decode a serialized ``ModelUpdate`` or reject it as DECODE_FAILED."""
    update = ModelUpdate()
    try:
        update.ParseFromString(payload)
    except DecodeError as exc:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_DECODE_FAILED, f"not a ModelUpdate: {exc}", producer_id=producer_id, seq=seq
        ) from None
    return update


def contributors_digest(pairs: Iterable[tuple[str, bytes]]) -> bytes:
    """SHA-256 naming a contributor set: over the sorted ``(client_id, update_sha256)`` pairs."""
    h = hashlib.sha256()
    for client_id, sha in sorted((c, bytes(s)) for c, s in pairs):
        raw = client_id.encode()
        h.update(len(raw).to_bytes(4, "big") + raw + len(sha).to_bytes(4, "big") + sha)
    return h.digest()


class UpdateAssembler:
    """Turns verified envelopes carrying ``ModelUpdate`` chunks (or whole updates) into complete updates.

    Chunks are grouped per (producer, payload id), so one producer cannot disturb another's reassembly;
    a payload is released once, when every chunk is there and its digest matches. One left incomplete past
    ``ttl_s`` (or evicted by the reassembler's memory bound) is given up on, and :meth:`given_up` hands its
    chunks' records to the caller to dead-letter (``chunk_invalid``: the bus's reason for chunked input that
    cannot be reassembled).
    """

    def __init__(self, *, ttl_s: float = 600.0, max_partials: int = 65536) -> None:
        self._reassembler = Reassembler(ttl_s=ttl_s, on_incomplete=self._incomplete)
        self._parts: OrderedDict[bytes, dict[int, EnvelopeRef]] = OrderedDict()
        #: The records of each partial update's chunks: what its dead letters carry if it is given up on.
        self._records: dict[bytes, dict[int, ConsumerRecord[bytes, bytes]]] = {}
        self._given_up: list[IncompleteUpdate] = []
        self._max_partials = max_partials

    def _incomplete(self, ns: bytes, held: int, count: int, why: str) -> None:
        producer, _, pid = ns.partition(b"\x00")
        records = self._records.pop(ns, {})
        self._parts.pop(ns, None)
        detail = f"incomplete ModelUpdate {pid.hex()[:16]}: {held} of {count} chunks, given up ({why})"
        self._given_up.append(IncompleteUpdate(producer.decode(), tuple(records[i] for i in sorted(records)), detail))

    def given_up(self) -> list[IncompleteUpdate]:
        """The incomplete updates given up on (expired or evicted) since the last call, each with its records."""
        out, self._given_up = self._given_up, []
        return out

    def add(self, event: LogEvent) -> AssembledUpdate | None:
        """Feed one event; returns the update it completes, if any. Raises ``EnvelopeRejected``."""
        env, msg = event.envelope, event.message
        if isinstance(msg, ModelUpdate):
            payload = msg.SerializeToString(deterministic=True)
            return self._done(event, msg, hashlib.sha256(payload).digest(), (envelope_ref(event),))
        if not isinstance(msg, Chunk) or msg.payload_schema != _UPDATE_SCHEMA:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_INVALID_UPDATE,
                f"expected a ModelUpdate (or a chunk of one), got {env.schema}",
                producer_id=env.producer_id,
                seq=env.seq,
            )
        ns = env.producer_id.encode() + b"\x00" + bytes(msg.payload_id)
        chunk = Chunk()
        chunk.CopyFrom(msg)
        chunk.payload_id = ns
        parts = self._parts.setdefault(ns, {})
        parts.setdefault(chunk.index, envelope_ref(event))
        self._records.setdefault(ns, {}).setdefault(chunk.index, event.record)
        while len(self._parts) > self._max_partials:
            evicted, _ = self._parts.popitem(last=False)
            self._records.pop(evicted, None)
        try:
            assembled = self._reassembler.add(chunk)
        except EnvelopeRejected as exc:
            raise EnvelopeRejected(exc.reason, exc.detail, producer_id=env.producer_id, seq=env.seq) from None
        if assembled is None:
            return None
        self._records.pop(ns, None)
        refs = self._parts.pop(ns, {})
        if sorted(refs) != list(range(msg.count)):
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_CHUNK_INVALID,
                "lost track of where the parts of this update lie",
                producer_id=env.producer_id,
                seq=env.seq,
            )
        ordered = tuple(refs[i] for i in range(msg.count))
        update = parse_update(assembled.payload, producer_id=env.producer_id, seq=env.seq)
        return self._done(event, update, bytes(msg.payload_sha256), ordered)

    @staticmethod
    def _done(event: LogEvent, update: ModelUpdate, sha: bytes, parts: tuple[EnvelopeRef, ...]) -> AssembledUpdate:
        env = event.envelope
        return AssembledUpdate(update, sha, env.producer_id, env.hospital_id, parts, event.record)


def assemble_parts(messages: Sequence[object]) -> tuple[bytes, bytes]:
    """Strictly re-assemble one update from its parts' decoded messages, in the order given.

    Either one whole ``ModelUpdate``, or chunks ``0 .. n-1`` of one payload, in order, complete, whose
    SHA-256 matches. Returns ``(payload, sha256)``; raises ``ValueError`` on anything else.
    """
    if len(messages) == 1 and isinstance(messages[0], ModelUpdate):
        payload = messages[0].SerializeToString(deterministic=True)
        return payload, hashlib.sha256(payload).digest()
    chunks = [m for m in messages if isinstance(m, Chunk)]
    if not chunks or len(chunks) != len(messages):
        raise ValueError("parts are neither one ModelUpdate nor chunks")
    first = chunks[0]
    if first.payload_schema != _UPDATE_SCHEMA or first.count != len(chunks):
        raise ValueError("chunks do not make up one ModelUpdate")
    for i, c in enumerate(chunks):
        same = (c.payload_id, c.count, c.total_size, c.payload_sha256, c.payload_schema)
        if c.index != i or same != (
            first.payload_id,
            first.count,
            first.total_size,
            first.payload_sha256,
            first.payload_schema,
        ):
            raise ValueError(f"chunk {i} is out of order or belongs to another payload")
    payload = b"".join(bytes(c.data) for c in chunks)
    sha = hashlib.sha256(payload).digest()
    if len(payload) != first.total_size or sha != bytes(first.payload_sha256):
        raise ValueError("reassembled payload does not match its digest")
    return payload, sha
