"""The medkiosk wire format: protobuf messages for the envelope and every event the bus carries.

The ``.proto`` sources live in ``schemas/v1``; the generated ``*_pb2`` modules are committed and
``make check-protos`` regenerates them and fails on any difference.
"""

from __future__ import annotations

from google.protobuf.message import Message

from schemas.v1.audit_pb2 import AuditRecord
from schemas.v1.chunk_pb2 import Chunk
from schemas.v1.control_pb2 import ScalingCommand
from schemas.v1.dlq_pb2 import DeadLetter, RejectReason
from schemas.v1.envelope_pb2 import BatchProof, Encryption, MedicalRecord, Signature
from schemas.v1.federated_pb2 import (
    AccountantState,
    ClientPrivacy,
    ContributorPrivacy,
    ContributorRef,
    DpPolicy,
    DpStep,
    EncryptedSum,
    EnvelopeRef,
    MaskKind,
    ModelUpdate,
    ModelVersion,
    PartitionOffset,
    PlainAggregate,
    PrivacySpent,
    RoundAnnouncement,
    RoundClose,
    RoundContributor,
    StragglerMode,
    UpdateReceipt,
)
from schemas.v1.identity_pb2 import CardRead, IdentityCheck, IdentityVerdict, LivenessResult
from schemas.v1.inference_pb2 import DepartmentScore, InferenceResult
from schemas.v1.registry_pb2 import ServiceInstance
from schemas.v1.telemetry_pb2 import StageLatency, Telemetry
from schemas.v1.trainer_pb2 import TrainingRequest

__all__ = [
    "MESSAGE_TYPES",
    "AccountantState",
    "AuditRecord",
    "BatchProof",
    "CardRead",
    "Chunk",
    "ClientPrivacy",
    "ContributorPrivacy",
    "ContributorRef",
    "DeadLetter",
    "DepartmentScore",
    "DpPolicy",
    "DpStep",
    "EncryptedSum",
    "Encryption",
    "EnvelopeRef",
    "IdentityCheck",
    "IdentityVerdict",
    "InferenceResult",
    "LivenessResult",
    "MaskKind",
    "MedicalRecord",
    "ModelUpdate",
    "ModelVersion",
    "PartitionOffset",
    "PlainAggregate",
    "PrivacySpent",
    "RejectReason",
    "RoundAnnouncement",
    "RoundClose",
    "RoundContributor",
    "ScalingCommand",
    "ServiceInstance",
    "Signature",
    "StageLatency",
    "StragglerMode",
    "Telemetry",
    "TrainingRequest",
    "UpdateReceipt",
    "message_type",
]

#: Every message an envelope may carry, by full protobuf name (the envelope's ``schema`` field).
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (
        AuditRecord,
        CardRead,
        Chunk,
        DeadLetter,
        EncryptedSum,
        IdentityCheck,
        InferenceResult,
        LivenessResult,
        ModelUpdate,
        ModelVersion,
        PlainAggregate,
        RoundAnnouncement,
        RoundClose,
        ScalingCommand,
        ServiceInstance,
        Telemetry,
        TrainingRequest,
        UpdateReceipt,
    )
}


def message_type(schema: str) -> type[Message] | None:
    """The message class for a full protobuf name, or ``None`` when the schema is unknown."""
    return MESSAGE_TYPES.get(schema)
