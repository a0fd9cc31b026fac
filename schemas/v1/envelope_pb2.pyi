from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Encryption(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENCRYPTION_UNSPECIFIED: _ClassVar[Encryption]
    ENCRYPTION_AES256_GCM: _ClassVar[Encryption]
    ENCRYPTION_NONE: _ClassVar[Encryption]
ENCRYPTION_UNSPECIFIED: Encryption
ENCRYPTION_AES256_GCM: Encryption
ENCRYPTION_NONE: Encryption

class Signature(_message.Message):
    __slots__ = ("r", "s", "v")
    R_FIELD_NUMBER: _ClassVar[int]
    S_FIELD_NUMBER: _ClassVar[int]
    V_FIELD_NUMBER: _ClassVar[int]
    r: bytes
    s: bytes
    v: int
    def __init__(self, r: _Optional[bytes] = ..., s: _Optional[bytes] = ..., v: _Optional[int] = ...) -> None: ...

class MedicalRecord(_message.Message):
    __slots__ = ("encrypted_data", "hospital_id", "timestamp", "signature", "producer_id", "seq", "key_id", "schema", "prev_hash", "encryption", "stream", "batch")
    ENCRYPTED_DATA_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTION_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    encrypted_data: bytes
    hospital_id: str
    timestamp: int
    signature: Signature
    producer_id: str
    seq: int
    key_id: str
    schema: str
    prev_hash: bytes
    encryption: Encryption
    stream: str
    batch: BatchProof
    def __init__(self, encrypted_data: _Optional[bytes] = ..., hospital_id: _Optional[str] = ..., timestamp: _Optional[int] = ..., signature: _Optional[_Union[Signature, _Mapping]] = ..., producer_id: _Optional[str] = ..., seq: _Optional[int] = ..., key_id: _Optional[str] = ..., schema: _Optional[str] = ..., prev_hash: _Optional[bytes] = ..., encryption: _Optional[_Union[Encryption, str]] = ..., stream: _Optional[str] = ..., batch: _Optional[_Union[BatchProof, _Mapping]] = ...) -> None: ...

class BatchProof(_message.Message):
    __slots__ = ("size", "index", "path")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    size: int
    index: int
    path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, size: _Optional[int] = ..., index: _Optional[int] = ..., path: _Optional[_Iterable[bytes]] = ...) -> None: ...
