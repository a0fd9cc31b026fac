from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TrainingRequest(_message.Message):
    __slots__ = ("request_id", "model_name", "manifest", "text_encoder_dir", "epochs", "roi", "learning_rate", "seed", "fine_tune_encoders", "expires_at", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    TEXT_ENCODER_DIR_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    ROI_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FINE_TUNE_ENCODERS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    model_name: str
    manifest: str
    text_encoder_dir: str
    epochs: int
    roi: _containers.RepeatedScalarFieldContainer[int]
    learning_rate: float
    seed: int
    fine_tune_encoders: bool
    expires_at: int
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., model_name: _Optional[str] = ..., manifest: _Optional[str] = ..., text_encoder_dir: _Optional[str] = ..., epochs: _Optional[int] = ..., roi: _Optional[_Iterable[int]] = ..., learning_rate: _Optional[float] = ..., seed: _Optional[int] = ..., fine_tune_encoders: _Optional[bool] = ..., expires_at: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...
