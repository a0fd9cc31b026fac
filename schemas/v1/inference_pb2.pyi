from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DepartmentScore(_message.Message):
    __slots__ = ("department", "score")
    DEPARTMENT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    department: str
    score: float
    def __init__(self, department: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class InferenceResult(_message.Message):
    __slots__ = ("kiosk_id", "hospital_id", "request_id", "model_name", "model_version", "engine", "symptoms", "ranking", "latency_ns", "synthetic")
    KIOSK_ID_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    SYMPTOMS_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    LATENCY_NS_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    kiosk_id: str
    hospital_id: str
    request_id: str
    model_name: str
    model_version: str
    engine: str
    symptoms: _containers.RepeatedScalarFieldContainer[str]
    ranking: _containers.RepeatedCompositeFieldContainer[DepartmentScore]
    latency_ns: int
    synthetic: bool
    def __init__(self, kiosk_id: _Optional[str] = ..., hospital_id: _Optional[str] = ..., request_id: _Optional[str] = ..., model_name: _Optional[str] = ..., model_version: _Optional[str] = ..., engine: _Optional[str] = ..., symptoms: _Optional[_Iterable[str]] = ..., ranking: _Optional[_Iterable[_Union[DepartmentScore, _Mapping]]] = ..., latency_ns: _Optional[int] = ..., synthetic: _Optional[bool] = ...) -> None: ...
