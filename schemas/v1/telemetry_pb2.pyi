from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StageLatency(_message.Message):
    __slots__ = ("stage", "p50_ms", "p99_ms")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    p50_ms: float
    p99_ms: float
    def __init__(self, stage: _Optional[str] = ..., p50_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ...) -> None: ...

class Telemetry(_message.Message):
    __slots__ = ("kiosk_id", "hospital_id", "at", "request_rate", "queue_depth", "outbox_depth", "latencies", "clock_offset_ns", "load", "clock_offset_estimated", "clock_offset_samples", "clock_offset_spread_ns")
    KIOSK_ID_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_ID_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_RATE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    OUTBOX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    LATENCIES_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_NS_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CLOCK_OFFSET_SPREAD_NS_FIELD_NUMBER: _ClassVar[int]
    kiosk_id: str
    hospital_id: str
    at: int
    request_rate: float
    queue_depth: int
    outbox_depth: int
    latencies: _containers.RepeatedCompositeFieldContainer[StageLatency]
    clock_offset_ns: int
    load: float
    clock_offset_estimated: bool
    clock_offset_samples: int
    clock_offset_spread_ns: int
    def __init__(self, kiosk_id: _Optional[str] = ..., hospital_id: _Optional[str] = ..., at: _Optional[int] = ..., request_rate: _Optional[float] = ..., queue_depth: _Optional[int] = ..., outbox_depth: _Optional[int] = ..., latencies: _Optional[_Iterable[_Union[StageLatency, _Mapping]]] = ..., clock_offset_ns: _Optional[int] = ..., load: _Optional[float] = ..., clock_offset_estimated: _Optional[bool] = ..., clock_offset_samples: _Optional[int] = ..., clock_offset_spread_ns: _Optional[int] = ...) -> None: ...
