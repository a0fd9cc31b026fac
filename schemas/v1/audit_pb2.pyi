from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class AuditRecord(_message.Message):
    __slots__ = ("source_topic", "source_partition", "source_offset", "producer_id", "seq", "hospital_id", "schema", "key_id", "timestamp", "signing_key_version", "envelope_hash", "prev_hash", "routed_to", "observed_at", "stream", "chain_reset")
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    SOURCE_PARTITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_OFFSET_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNING_KEY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_HASH_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    ROUTED_TO_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_AT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    CHAIN_RESET_FIELD_NUMBER: _ClassVar[int]
    source_topic: str
    source_partition: int
    source_offset: int
    producer_id: str
    seq: int
    hospital_id: str
    schema: str
    key_id: str
    timestamp: int
    signing_key_version: int
    envelope_hash: bytes
    prev_hash: bytes
    routed_to: str
    observed_at: int
    stream: str
    chain_reset: bool
    def __init__(self, source_topic: _Optional[str] = ..., source_partition: _Optional[int] = ..., source_offset: _Optional[int] = ..., producer_id: _Optional[str] = ..., seq: _Optional[int] = ..., hospital_id: _Optional[str] = ..., schema: _Optional[str] = ..., key_id: _Optional[str] = ..., timestamp: _Optional[int] = ..., signing_key_version: _Optional[int] = ..., envelope_hash: _Optional[bytes] = ..., prev_hash: _Optional[bytes] = ..., routed_to: _Optional[str] = ..., observed_at: _Optional[int] = ..., stream: _Optional[str] = ..., chain_reset: _Optional[bool] = ...) -> None: ...
