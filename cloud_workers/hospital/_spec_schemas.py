"""Payload schemas for the AsyncAPI document, generated from the protobuf descriptors in ``schemas``."""

from __future__ import annotations

from functools import cache
from typing import Any

from cloud_workers.hospital._proto_schema import message_schema
from schemas import AuditRecord, DeadLetter, IdentityCheck, InferenceResult, MedicalRecord

__all__ = ["DEAD_LETTER_SCHEMA", "audit_envelope_schema", "envelope_schema"]

_ENVELOPE_FIELDS = {
    "encrypted_data": "12-byte nonce + AES-256-GCM ciphertext and tag of the inner message (associated data: the "
    "canonical header bytes); the inner message in the clear when encryption is ENCRYPTION_NONE.",
    "hospital_id": "the hospital the event belongs to (its data key decrypts it).",
    "timestamp": "Unix time in nanoseconds at which the producer sealed the envelope.",
    "signature": "ECDSA P-256 over SHA-256(header_bytes || SHA-256(encrypted_data)); v names the signing key version.",
    "producer_id": "the signing producer (a kiosk id, gateway id, ...).",
    "seq": "per (producer_id, stream) sequence number, starting at 1, without gaps.",
    "key_id": "<hospital_id>/<version> of the data key (empty when not encrypted).",
    "schema": "full protobuf name of the inner message, e.g. schemas.v1.IdentityCheck.",
    "prev_hash": "envelope hash of the same producer's previous envelope in this stream (32 zero bytes for seq 1).",
    "encryption": "ENCRYPTION_AES256_GCM on kiosk and hospital topics; ENCRYPTION_NONE on audit.v1.",
    "stream": "the chain this envelope belongs to (by convention the topic its producer published it to).",
}


@cache
def envelope_schema() -> dict[str, Any]:
    """``schemas.v1.MedicalRecord`` carrying an encrypted ``IdentityCheck`` or ``InferenceResult``."""
    return message_schema(
        MedicalRecord,
        description="Binary protobuf schemas.v1.MedicalRecord (content type application/x-protobuf). Verify the "
        "signature, sequence and chain before decrypting; the decrypted payload is the message named by `schema`: "
        "schemas.v1.IdentityCheck or schemas.v1.InferenceResult (see x-decrypted-payload). Spec: docs/ENVELOPE.md.",
        field_descriptions=_ENVELOPE_FIELDS,
        decrypted=(IdentityCheck, InferenceResult),
    )


@cache
def audit_envelope_schema() -> dict[str, Any]:
    """``schemas.v1.MedicalRecord`` carrying a plain (unencrypted) ``AuditRecord``."""
    return message_schema(
        MedicalRecord,
        description="Binary protobuf schemas.v1.MedicalRecord signed by a gateway, not encrypted (encryption "
        "ENCRYPTION_NONE): encrypted_data is a serialized schemas.v1.AuditRecord (see x-decrypted-payload), the "
        "header and chain link of one envelope the gateway routed. Verifying needs public keys only.",
        field_descriptions=_ENVELOPE_FIELDS,
        decrypted=(AuditRecord,),
    )


DEAD_LETTER_SCHEMA: dict[str, Any] = message_schema(
    DeadLetter,
    description="Binary protobuf schemas.v1.DeadLetter (not enveloped): the refused record whole, with its reason.",
)
