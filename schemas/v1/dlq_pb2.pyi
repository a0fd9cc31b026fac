from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECT_REASON_UNSPECIFIED: _ClassVar[RejectReason]
    REJECT_REASON_MALFORMED: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_PRODUCER: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_SIGNING_KEY: _ClassVar[RejectReason]
    REJECT_REASON_BAD_SIGNATURE: _ClassVar[RejectReason]
    REJECT_REASON_WRONG_HOSPITAL: _ClassVar[RejectReason]
    REJECT_REASON_REPLAYED_SEQ: _ClassVar[RejectReason]
    REJECT_REASON_SEQ_GAP: _ClassVar[RejectReason]
    REJECT_REASON_BROKEN_CHAIN: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_DATA_KEY: _ClassVar[RejectReason]
    REJECT_REASON_DECRYPT_FAILED: _ClassVar[RejectReason]
    REJECT_REASON_UNKNOWN_SCHEMA: _ClassVar[RejectReason]
    REJECT_REASON_DECODE_FAILED: _ClassVar[RejectReason]
    REJECT_REASON_HANDLER_FAILED: _ClassVar[RejectReason]
    REJECT_REASON_CHUNK_INVALID: _ClassVar[RejectReason]
    REJECT_REASON_UNAUTHORIZED: _ClassVar[RejectReason]
    REJECT_REASON_STALE: _ClassVar[RejectReason]
    REJECT_REASON_WRONG_ROUND: _ClassVar[RejectReason]
    REJECT_REASON_CONFLICTING_UPDATE: _ClassVar[RejectReason]
    REJECT_REASON_INVALID_UPDATE: _ClassVar[RejectReason]
    REJECT_REASON_TOO_FEW_CONTRIBUTORS: _ClassVar[RejectReason]
    REJECT_REASON_FORGED_CONTRIBUTOR: _ClassVar[RejectReason]
    REJECT_REASON_SUM_MISMATCH: _ClassVar[RejectReason]
    REJECT_REASON_CONTRIBUTORS_MISMATCH: _ClassVar[RejectReason]
    REJECT_REASON_INTERNAL_ERROR: _ClassVar[RejectReason]
    REJECT_REASON_PLAINTEXT_REFUSED: _ClassVar[RejectReason]
    REJECT_REASON_WRONG_SCHEMA: _ClassVar[RejectReason]
    REJECT_REASON_WRONG_STREAM: _ClassVar[RejectReason]
    REJECT_REASON_TOO_LARGE: _ClassVar[RejectReason]
REJECT_REASON_UNSPECIFIED: RejectReason
REJECT_REASON_MALFORMED: RejectReason
REJECT_REASON_UNKNOWN_PRODUCER: RejectReason
REJECT_REASON_UNKNOWN_SIGNING_KEY: RejectReason
REJECT_REASON_BAD_SIGNATURE: RejectReason
REJECT_REASON_WRONG_HOSPITAL: RejectReason
REJECT_REASON_REPLAYED_SEQ: RejectReason
REJECT_REASON_SEQ_GAP: RejectReason
REJECT_REASON_BROKEN_CHAIN: RejectReason
REJECT_REASON_UNKNOWN_DATA_KEY: RejectReason
REJECT_REASON_DECRYPT_FAILED: RejectReason
REJECT_REASON_UNKNOWN_SCHEMA: RejectReason
REJECT_REASON_DECODE_FAILED: RejectReason
REJECT_REASON_HANDLER_FAILED: RejectReason
REJECT_REASON_CHUNK_INVALID: RejectReason
REJECT_REASON_UNAUTHORIZED: RejectReason
REJECT_REASON_STALE: RejectReason
REJECT_REASON_WRONG_ROUND: RejectReason
REJECT_REASON_CONFLICTING_UPDATE: RejectReason
REJECT_REASON_INVALID_UPDATE: RejectReason
REJECT_REASON_TOO_FEW_CONTRIBUTORS: RejectReason
REJECT_REASON_FORGED_CONTRIBUTOR: RejectReason
REJECT_REASON_SUM_MISMATCH: RejectReason
REJECT_REASON_CONTRIBUTORS_MISMATCH: RejectReason
REJECT_REASON_INTERNAL_ERROR: RejectReason
REJECT_REASON_PLAINTEXT_REFUSED: RejectReason
REJECT_REASON_WRONG_SCHEMA: RejectReason
REJECT_REASON_WRONG_STREAM: RejectReason
REJECT_REASON_TOO_LARGE: RejectReason

class DeadLetter(_message.Message):
    __slots__ = ("source_topic", "source_partition", "source_offset", "key", "value", "reason", "detail", "worker", "rejected_at", "producer_id", "seq", "value_length", "value_sha256", "truncated")
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    REJECTED_AT_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    VALUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    VALUE_SHA256_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes
    value: bytes
    reason: RejectReason
    detail: str
    worker: str
    rejected_at: int
    producer_id: str
    seq: int
    value_length: int
    value_sha256: bytes
    truncated: bool
    def __init__(self, source_topic: _Optional[str] = ..., source_partition: _Optional[int] = ..., source_offset: _Optional[int] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., reason: _Optional[_Union[RejectReason, str]] = ..., detail: _Optional[str] = ..., worker: _Optional[str] = ..., rejected_at: _Optional[int] = ..., producer_id: _Optional[str] = ..., seq: _Optional[int] = ..., value_length: _Optional[int] = ..., value_sha256: _Optional[bytes] = ..., truncated: _Optional[bool] = ...) -> None: ...
