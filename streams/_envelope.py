"""The envelope: AES-256-GCM over the inner protobuf, ECDSA over header + ciphertext, a hash chain.

The bytes that are signed and bound as associated data are a canonical encoding of the header
(``header_bytes``), not the protobuf serialisation, so any implementation can recompute them exactly.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    Prehashed,
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError, Message

from schemas import Encryption, MedicalRecord, RejectReason, message_type
from streams._errors import EnvelopeRejected
from streams._keys import DataKey, Keyring, SigningKey
from streams._merkle import MAX_BATCH, all_paths, leaf_hash, path_length, root_from_path

__all__ = [
    "DEFAULT_LIMITS",
    "GENESIS_HASH",
    "BatchItem",
    "ChainState",
    "EnvelopeLimits",
    "Opened",
    "batch_digest",
    "decode_payload",
    "decrypt",
    "envelope_hash",
    "header_bytes",
    "open_envelope",
    "parse",
    "seal",
    "seal_batch",
    "verify_signature",
]

GENESIS_HASH = bytes(32)
_MAGIC = b"MKENV1\x00"
_BATCH_MAGIC = b"MKBATCH1\x00"
_FIXED = struct.Struct(">qQiB")
_NONCE = 12
_ECDSA = ec.ECDSA(Prehashed(hashes.SHA256()))
#: Order of the P-256 group: a signature's ``s`` must be at most half of it (low-s), so ``(r, n - s)``,
#: which verifies too, cannot pass as a second envelope with another hash.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = P256_ORDER // 2
_ENCRYPTIONS = (Encryption.ENCRYPTION_AES256_GCM, Encryption.ENCRYPTION_NONE)
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvelopeLimits:
    """Size limits a consumer applies before it trusts any field (from ``BusSettings``)."""

    #: The whole record as read from the broker.
    max_record_bytes: int = 4 * 1024 * 1024
    #: Each identifier: ``hospital_id``, ``producer_id``, ``key_id``, ``schema``, ``stream``.
    max_field_bytes: int = 256


DEFAULT_LIMITS = EnvelopeLimits()


@dataclass(frozen=True, slots=True)
class ChainState:
    """Where a producer's chain stands: the last ``seq`` it used and the hash of that envelope."""

    seq: int = 0
    prev_hash: bytes = GENESIS_HASH


def _field(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def header_bytes(rec: MedicalRecord) -> bytes:
    """Canonical encoding of every header field (everything but the data and the r/s of the signature).

    Raises ``EnvelopeRejected(MALFORMED)`` for field values the layout cannot hold (``parse`` refuses them
    first; this guards callers that build records by hand)."""
    try:
        fixed = _FIXED.pack(rec.timestamp, rec.seq, rec.signature.v, rec.encryption)
    except struct.error as exc:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_MALFORMED,
            f"header field out of range: {exc}",
            producer_id=rec.producer_id[:64],
            seq=rec.seq,
        ) from None
    return b"".join(
        (
            _MAGIC,
            fixed,
            _field(rec.hospital_id.encode()),
            _field(rec.producer_id.encode()),
            _field(rec.key_id.encode()),
            _field(rec.schema.encode()),
            _field(rec.prev_hash),
            _field(rec.stream.encode()),
        )
    )


def _signed_digest(header: bytes, data: bytes, data_digest: bytes | None = None) -> bytes:
    return hashlib.sha256(header + (data_digest or hashlib.sha256(data).digest())).digest()


def envelope_hash(rec: MedicalRecord, *, header: bytes | None = None, data_digest: bytes | None = None) -> bytes:
    """SHA-256 identity of an envelope: what the next envelope's ``prev_hash`` must name. ``header`` and
    ``data_digest`` (SHA-256 of ``encrypted_data``) may be passed when the caller already has them.

    A batch-signed envelope's identity is its signed digest (header and data, not the batch's shared
    signature): the next envelope of the chain is in the same batch, and must name it before it is signed."""
    h = hashlib.sha256(header if header is not None else header_bytes(rec))
    h.update(data_digest or hashlib.sha256(rec.encrypted_data).digest())
    if not rec.HasField("batch"):
        h.update(rec.signature.r)
        h.update(rec.signature.s)
    return h.digest()


def batch_digest(root: bytes, size: int) -> bytes:
    """What a batch signature signs: ``SHA-256("MKBATCH1\\0" || u32 size || root)``."""
    return hashlib.sha256(_BATCH_MAGIC + struct.pack(">I", size) + root).digest()


def _sign_digest(signing_key: SigningKey, digest: bytes) -> tuple[bytes, bytes]:
    der = signing_key.private_key.sign(digest, _ECDSA)
    r, s = decode_dss_signature(der)
    if s > _HALF_ORDER:
        s = P256_ORDER - s
    return r.to_bytes(32, "big"), s.to_bytes(32, "big")


def seal(
    message: Message,
    *,
    signing_key: SigningKey,
    chain: ChainState,
    hospital_id: str,
    data_key: DataKey | None,
    timestamp_ns: int | None = None,
    stream: str = "",
) -> tuple[MedicalRecord, ChainState]:
    """Encrypt (when ``data_key`` is given), sign and chain ``message`` in the producer's ``stream`` (by
    convention the topic it is published to); returns the envelope and that stream's next chain state.
    Pure apart from the random nonce."""
    now = time.time_ns() if timestamp_ns is None else timestamp_ns
    rec, digest = _unsigned(message, signing_key, chain, hospital_id, data_key, now, stream)
    rec.signature.r, rec.signature.s = _sign_digest(signing_key, digest)
    return rec, ChainState(rec.seq, envelope_hash(rec))


def _unsigned(
    message: Message,
    signing_key: SigningKey,
    chain: ChainState,
    hospital_id: str,
    data_key: DataKey | None,
    timestamp_ns: int,
    stream: str,
) -> tuple[MedicalRecord, bytes]:
    """The envelope of ``message``, chained and encrypted but not yet signed, and its signed digest."""
    rec = MedicalRecord(
        hospital_id=hospital_id,
        timestamp=timestamp_ns,
        producer_id=signing_key.producer_id,
        seq=chain.seq + 1,
        key_id=data_key.key_id if data_key else "",
        schema=message.DESCRIPTOR.full_name,
        prev_hash=chain.prev_hash,
        encryption=Encryption.ENCRYPTION_AES256_GCM if data_key else Encryption.ENCRYPTION_NONE,
        stream=stream,
    )
    rec.signature.v = signing_key.version
    header = header_bytes(rec)
    payload = message.SerializeToString(deterministic=True)
    if data_key is not None:
        nonce = os.urandom(_NONCE)
        rec.encrypted_data = nonce + AESGCM(data_key.key).encrypt(nonce, payload, header)
    else:
        rec.encrypted_data = payload
    return rec, _signed_digest(header, rec.encrypted_data)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One message of a batch to seal: it goes in ``stream`` (its topic), for ``hospital_id``."""

    message: Message
    stream: str
    hospital_id: str = ""
    data_key: DataKey | None = None


def seal_batch(
    items: Sequence[BatchItem],
    *,
    signing_key: SigningKey,
    chains: dict[str, ChainState],
    timestamp_ns: int | None = None,
) -> tuple[list[MedicalRecord], dict[str, ChainState]]:
    """Seal ``items`` with ONE signature: each envelope is chained in its stream as ``seal`` would, its
    signed digest is a leaf of a Merkle tree, the root is signed once, and every envelope carries its
    inclusion proof, so each one still verifies on its own. Returns the envelopes and the chains after them
    (``chains`` is not modified). Batches of more than ``MAX_BATCH`` items are split."""
    chains = dict(chains)
    out: list[MedicalRecord] = []
    now = time.time_ns() if timestamp_ns is None else timestamp_ns
    for start in range(0, len(items), MAX_BATCH):
        part = items[start : start + MAX_BATCH]
        recs: list[MedicalRecord] = []
        leaves: list[bytes] = []
        for item in part:
            chain = chains.get(item.stream, ChainState())
            rec, digest = _unsigned(item.message, signing_key, chain, item.hospital_id, item.data_key, now, item.stream)
            # The identity of a batch-signed envelope is its signed digest (see ``envelope_hash``).
            chains[item.stream] = ChainState(rec.seq, digest)
            recs.append(rec)
            leaves.append(leaf_hash(digest))
        root, paths = all_paths(leaves)
        r, s = _sign_digest(signing_key, batch_digest(root, len(recs)))
        for index, (rec, path) in enumerate(zip(recs, paths, strict=True)):
            rec.signature.r = r
            rec.signature.s = s
            rec.batch.size = len(recs)
            rec.batch.index = index
            rec.batch.path.extend(path)
        out.extend(recs)
    return out, chains


def parse(raw: bytes, limits: EnvelopeLimits = DEFAULT_LIMITS) -> MedicalRecord:
    """Parse wire bytes into an envelope and check every header field's range and length before any of
    them is used, or reject it (``too_large`` or ``malformed``)."""
    if len(raw) > limits.max_record_bytes:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_TOO_LARGE, f"record of {len(raw)} bytes > limit {limits.max_record_bytes}"
        )
    rec = MedicalRecord()
    try:
        rec.ParseFromString(raw)
    except DecodeError as exc:
        raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, f"not an envelope: {exc}") from None
    # One envelope, one encoding: unknown or repeated fields would let many byte strings carry one signature.
    if not _canonical(rec, raw):
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_MALFORMED,
            "not the canonical encoding (unknown, repeated or out-of-order fields)",
            producer_id=rec.producer_id[:64],
            seq=rec.seq,
        )
    for name in ("hospital_id", "producer_id", "key_id", "schema", "stream"):
        size = len(getattr(rec, name).encode())
        if size > limits.max_field_bytes:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_TOO_LARGE,
                f"{name} of {size} bytes > limit {limits.max_field_bytes}",
                producer_id=rec.producer_id[:64] if name != "producer_id" else "",
                seq=rec.seq,
            )
    if not rec.producer_id or rec.seq == 0 or len(rec.prev_hash) != 32 or not rec.schema:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_MALFORMED,
            "missing producer_id, seq, schema or 32-byte prev_hash",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    problem = ""
    if rec.encryption not in _ENCRYPTIONS:
        problem = f"unknown encryption {rec.encryption}"
    elif not 1 <= rec.signature.v <= _INT32_MAX:
        problem = f"signing key version {rec.signature.v} out of range"
    elif rec.seq >= 2**63:
        problem = f"seq {rec.seq} out of range"
    elif len(rec.signature.r) != 32 or len(rec.signature.s) != 32:
        problem = "signature r/s must be 32 bytes"
    elif rec.encryption == Encryption.ENCRYPTION_NONE and rec.key_id:
        problem = "key_id must be empty when the envelope is not encrypted"
    elif rec.HasField("batch"):
        problem = _batch_problem(rec)
    if problem:
        raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, problem, producer_id=rec.producer_id, seq=rec.seq)
    return rec


def _batch_problem(rec: MedicalRecord) -> str:
    b = rec.batch
    if not 1 <= b.size <= MAX_BATCH:
        return f"batch size {b.size} out of range 1..{MAX_BATCH}"
    if b.index >= b.size:
        return f"batch index {b.index} not below size {b.size}"
    if len(b.path) != path_length(b.index, b.size):
        return f"batch proof has {len(b.path)} hashes; leaf {b.index} of {b.size} needs {path_length(b.index, b.size)}"
    if any(len(p) != 32 for p in b.path):
        return "batch proof hashes must be 32 bytes"
    return ""


class _VerifiedBatches:
    """Batch signatures already verified, so the other envelopes of a batch cost hashes, not an ECDSA
    verify. Keyed by every input of the verification, and by the public key object itself: a positive
    result is reused only for the very same key, digest and signature."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seen: OrderedDict[tuple[bytes, bytes, bytes], ec.EllipticCurvePublicKey] = OrderedDict()

    def known(self, key: tuple[bytes, bytes, bytes], public: ec.EllipticCurvePublicKey) -> bool:
        hit = self._seen.get(key)
        if hit is public:
            self._seen.move_to_end(key)
            return True
        return False

    def add(self, key: tuple[bytes, bytes, bytes], public: ec.EllipticCurvePublicKey) -> None:
        self._seen[key] = public
        self._seen.move_to_end(key)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)


_VERIFIED_BATCHES = _VerifiedBatches()


def verify_signature(
    rec: MedicalRecord, keyring: Keyring, *, header: bytes | None = None, data_digest: bytes | None = None
) -> None:
    """Check the producer is known, the key version exists, the signature holds and the producer
    may speak for ``hospital_id``. Needs public keys only. ``header``/``data_digest``: as for ``envelope_hash``."""
    info = keyring.producers.get(rec.producer_id)
    if info is None:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_UNKNOWN_PRODUCER, rec.producer_id, producer_id=rec.producer_id, seq=rec.seq
        )
    public = keyring.public_keys.get((rec.producer_id, rec.signature.v))
    if public is None:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_UNKNOWN_SIGNING_KEY,
            f"{rec.producer_id} v{rec.signature.v}",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    r = int.from_bytes(rec.signature.r, "big")
    s = int.from_bytes(rec.signature.s, "big")
    if not (0 < r < P256_ORDER and 0 < s <= _HALF_ORDER):
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_BAD_SIGNATURE,
            "signature is not canonical (needs 0 < r < n and 0 < s <= n/2)",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    try:
        head = header if header is not None else header_bytes(rec)
        digest = _signed_digest(head, rec.encrypted_data, data_digest)
        if rec.HasField("batch"):
            root = root_from_path(leaf_hash(digest), rec.batch.index, rec.batch.size, rec.batch.path)
            if root is None:
                raise InvalidSignature
            digest = batch_digest(root, rec.batch.size)
            cache_key = (digest, rec.signature.r, rec.signature.s)
            if not _VERIFIED_BATCHES.known(cache_key, public):
                public.verify(encode_dss_signature(r, s), digest, _ECDSA)
                _VERIFIED_BATCHES.add(cache_key, public)
        else:
            public.verify(encode_dss_signature(r, s), digest, _ECDSA)
    except InvalidSignature:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_BAD_SIGNATURE,
            "signature does not verify",
            producer_id=rec.producer_id,
            seq=rec.seq,
        ) from None
    if info.hospital_id and info.hospital_id != rec.hospital_id:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_WRONG_HOSPITAL,
            f"{rec.producer_id} belongs to {info.hospital_id}, envelope says {rec.hospital_id}",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    if rec.encryption == Encryption.ENCRYPTION_AES256_GCM:
        if not rec.key_id.startswith(f"{rec.hospital_id}/"):
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_WRONG_HOSPITAL,
                f"data key {rec.key_id} is not a key of {rec.hospital_id}",
                producer_id=rec.producer_id,
                seq=rec.seq,
            )
    elif rec.encryption != Encryption.ENCRYPTION_NONE:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_MALFORMED, "unknown encryption", producer_id=rec.producer_id, seq=rec.seq
        )


def decrypt(rec: MedicalRecord, keyring: Keyring, *, header: bytes | None = None) -> bytes:
    """The inner payload bytes; AES-GCM checks they and the header are exactly what was sealed."""
    if rec.encryption == Encryption.ENCRYPTION_NONE:
        return rec.encrypted_data
    key = keyring.data_key(rec.key_id)
    if key is None:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_UNKNOWN_DATA_KEY, rec.key_id, producer_id=rec.producer_id, seq=rec.seq
        )
    data = rec.encrypted_data
    if len(data) < _NONCE + 16:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_DECRYPT_FAILED, "ciphertext too short", producer_id=rec.producer_id, seq=rec.seq
        )
    try:
        return AESGCM(key.key).decrypt(
            data[:_NONCE], data[_NONCE:], header if header is not None else header_bytes(rec)
        )
    except InvalidTag:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_DECRYPT_FAILED,
            "authentication tag mismatch",
            producer_id=rec.producer_id,
            seq=rec.seq,
        ) from None


def decode_payload(rec: MedicalRecord, payload: bytes) -> Message:
    """Decode the inner protobuf named by the envelope's ``schema``."""
    cls = message_type(rec.schema)
    if cls is None:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_UNKNOWN_SCHEMA, rec.schema, producer_id=rec.producer_id, seq=rec.seq
        )
    msg = cls()
    try:
        msg.ParseFromString(payload)
    except DecodeError as exc:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_DECODE_FAILED, str(exc), producer_id=rec.producer_id, seq=rec.seq
        ) from None
    # Protobuf parsing is lenient: another message's bytes often parse. Producers serialise
    # deterministically, so the payload must be exactly the canonical encoding of the declared schema.
    if not _canonical(msg, payload):
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_DECODE_FAILED,
            f"payload is not the canonical encoding of {rec.schema} (unknown fields or other field layout)",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )
    return msg


def _canonical(msg: Message, raw: bytes) -> bool:
    """Whether ``raw`` is exactly the canonical encoding of ``msg`` (parsed from it) with no unknown fields.

    Unknown fields, at any depth, are dropped first (``DiscardUnknownFields`` is recursive), so bytes that
    carried any cannot equal the re-encoding: one serialisation checks both rules."""
    msg.DiscardUnknownFields()
    return msg.SerializeToString(deterministic=True) == raw


@dataclass(frozen=True, slots=True)
class Opened:
    envelope: MedicalRecord
    message: Message


def open_envelope(raw: bytes, keyring: Keyring, limits: EnvelopeLimits = DEFAULT_LIMITS) -> Opened:
    """Parse, verify, decrypt and decode in one call (no chain check: see ``ChainTracker``)."""
    rec = parse(raw, limits)
    verify_signature(rec, keyring)
    return Opened(rec, decode_payload(rec, decrypt(rec, keyring)))
