from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Chunk(_message.Message):
    __slots__ = ("payload_id", "payload_schema", "index", "count", "total_size", "payload_sha256", "data")
    PAYLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SHA256_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    payload_id: bytes
    payload_schema: str
    index: int
    count: int
    total_size: int
    payload_sha256: bytes
    data: bytes
    def __init__(self, payload_id: _Optional[bytes] = ..., payload_schema: _Optional[str] = ..., index: _Optional[int] = ..., count: _Optional[int] = ..., total_size: _Optional[int] = ..., payload_sha256: _Optional[bytes] = ..., data: _Optional[bytes] = ...) -> None: ...
