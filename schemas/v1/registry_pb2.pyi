from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ServiceInstance(_message.Message):
    __slots__ = ("service", "instance_id", "address", "port", "meta", "at", "ttl_ms", "alive", "check_passing", "check_output")
    class MetaEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    CHECK_PASSING_FIELD_NUMBER: _ClassVar[int]
    CHECK_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    service: str
    instance_id: str
    address: str
    port: int
    meta: _containers.ScalarMap[str, str]
    at: int
    ttl_ms: int
    alive: bool
    check_passing: bool
    check_output: str
    def __init__(self, service: _Optional[str] = ..., instance_id: _Optional[str] = ..., address: _Optional[str] = ..., port: _Optional[int] = ..., meta: _Optional[_Mapping[str, str]] = ..., at: _Optional[int] = ..., ttl_ms: _Optional[int] = ..., alive: _Optional[bool] = ..., check_passing: _Optional[bool] = ..., check_output: _Optional[str] = ...) -> None: ...
