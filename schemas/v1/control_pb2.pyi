from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class ScalingCommand(_message.Message):
    __slots__ = ("command_id", "target", "inference_workers", "camera_fps", "max_batch", "replicas", "predicted_load", "reason", "expires_at")
    COMMAND_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_WORKERS_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FPS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_LOAD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    command_id: str
    target: str
    inference_workers: int
    camera_fps: float
    max_batch: int
    replicas: int
    predicted_load: float
    reason: str
    expires_at: int
    def __init__(self, command_id: _Optional[str] = ..., target: _Optional[str] = ..., inference_workers: _Optional[int] = ..., camera_fps: _Optional[float] = ..., max_batch: _Optional[int] = ..., replicas: _Optional[int] = ..., predicted_load: _Optional[float] = ..., reason: _Optional[str] = ..., expires_at: _Optional[int] = ...) -> None: ...
