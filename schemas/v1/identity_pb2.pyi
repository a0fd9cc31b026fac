from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdentityVerdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTITY_VERDICT_UNSPECIFIED: _ClassVar[IdentityVerdict]
    IDENTITY_VERDICT_VERIFIED: _ClassVar[IdentityVerdict]
    IDENTITY_VERDICT_NO_FACE: _ClassVar[IdentityVerdict]
    IDENTITY_VERDICT_NOT_LIVE: _ClassVar[IdentityVerdict]
    IDENTITY_VERDICT_OUTSIDE_WINDOW: _ClassVar[IdentityVerdict]
    IDENTITY_VERDICT_AMBIGUOUS: _ClassVar[IdentityVerdict]
IDENTITY_VERDICT_UNSPECIFIED: IdentityVerdict
IDENTITY_VERDICT_VERIFIED: IdentityVerdict
IDENTITY_VERDICT_NO_FACE: IdentityVerdict
IDENTITY_VERDICT_NOT_LIVE: IdentityVerdict
IDENTITY_VERDICT_OUTSIDE_WINDOW: IdentityVerdict
IDENTITY_VERDICT_AMBIGUOUS: IdentityVerdict

class CardRead(_message.Message):
    __slots__ = ("kiosk_id", "card_number", "read_at", "frame_format")
    KIOSK_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    READ_AT_FIELD_NUMBER: _ClassVar[int]
    FRAME_FORMAT_FIELD_NUMBER: _ClassVar[int]
    kiosk_id: str
    card_number: str
    read_at: int
    frame_format: str
    def __init__(self, kiosk_id: _Optional[str] = ..., card_number: _Optional[str] = ..., read_at: _Optional[int] = ..., frame_format: _Optional[str] = ...) -> None: ...

class LivenessResult(_message.Message):
    __slots__ = ("kiosk_id", "captured_at", "face_found", "live_score", "face_box", "model_version", "unscored")
    KIOSK_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    FACE_FOUND_FIELD_NUMBER: _ClassVar[int]
    LIVE_SCORE_FIELD_NUMBER: _ClassVar[int]
    FACE_BOX_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    UNSCORED_FIELD_NUMBER: _ClassVar[int]
    kiosk_id: str
    captured_at: int
    face_found: bool
    live_score: float
    face_box: _containers.RepeatedScalarFieldContainer[int]
    model_version: str
    unscored: bool
    def __init__(self, kiosk_id: _Optional[str] = ..., captured_at: _Optional[int] = ..., face_found: _Optional[bool] = ..., live_score: _Optional[float] = ..., face_box: _Optional[_Iterable[int]] = ..., model_version: _Optional[str] = ..., unscored: _Optional[bool] = ...) -> None: ...

class IdentityCheck(_message.Message):
    __slots__ = ("kiosk_id", "hospital_id", "card", "liveness", "verdict", "skew_ns", "window_ns", "synthetic")
    KIOSK_ID_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    LIVENESS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SKEW_NS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_NS_FIELD_NUMBER: _ClassVar[int]
    SYNTHETIC_FIELD_NUMBER: _ClassVar[int]
    kiosk_id: str
    hospital_id: str
    card: CardRead
    liveness: LivenessResult
    verdict: IdentityVerdict
    skew_ns: int
    window_ns: int
    synthetic: bool
    def __init__(self, kiosk_id: _Optional[str] = ..., hospital_id: _Optional[str] = ..., card: _Optional[_Union[CardRead, _Mapping]] = ..., liveness: _Optional[_Union[LivenessResult, _Mapping]] = ..., verdict: _Optional[_Union[IdentityVerdict, str]] = ..., skew_ns: _Optional[int] = ..., window_ns: _Optional[int] = ..., synthetic: _Optional[bool] = ...) -> None: ...
