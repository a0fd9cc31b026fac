from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MaskKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MASK_KIND_UNSPECIFIED: _ClassVar[MaskKind]
    MASK_KIND_RANDOM_K: _ClassVar[MaskKind]
    MASK_KIND_TOP_K_PREVIOUS: _ClassVar[MaskKind]
MASK_KIND_UNSPECIFIED: MaskKind
MASK_KIND_RANDOM_K: MaskKind
MASK_KIND_TOP_K_PREVIOUS: MaskKind

class RoundAnnouncement(_message.Message):
    __slots__ = ("model_name", "round_id", "model_version", "invited", "min_clients", "max_clients", "deadline", "clip_norm", "quant_bits", "quant_range", "mask_kind", "mask_seed", "mask_k", "paillier_key_id", "values_per_plaintext")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    INVITED_FIELD_NUMBER: _ClassVar[int]
    MIN_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_CLIENTS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    CLIP_NORM_FIELD_NUMBER: _ClassVar[int]
    QUANT_BITS_FIELD_NUMBER: _ClassVar[int]
    QUANT_RANGE_FIELD_NUMBER: _ClassVar[int]
    MASK_KIND_FIELD_NUMBER: _ClassVar[int]
    MASK_SEED_FIELD_NUMBER: _ClassVar[int]
    MASK_K_FIELD_NUMBER: _ClassVar[int]
    PAILLIER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    VALUES_PER_PLAINTEXT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    round_id: int
    model_version: int
    invited: _containers.RepeatedScalarFieldContainer[str]
    min_clients: int
    max_clients: int
    deadline: int
    clip_norm: float
    quant_bits: int
    quant_range: float
    mask_kind: MaskKind
    mask_seed: int
    mask_k: int
    paillier_key_id: str
    values_per_plaintext: int
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., model_version: _Optional[int] = ..., invited: _Optional[_Iterable[str]] = ..., min_clients: _Optional[int] = ..., max_clients: _Optional[int] = ..., deadline: _Optional[int] = ..., clip_norm: _Optional[float] = ..., quant_bits: _Optional[int] = ..., quant_range: _Optional[float] = ..., mask_kind: _Optional[_Union[MaskKind, str]] = ..., mask_seed: _Optional[int] = ..., mask_k: _Optional[int] = ..., paillier_key_id: _Optional[str] = ..., values_per_plaintext: _Optional[int] = ...) -> None: ...

class ModelUpdate(_message.Message):
    __slots__ = ("model_name", "round_id", "client_id", "shard", "num_shards", "ciphertexts", "num_examples", "paillier_key_id")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    PAILLIER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    round_id: int
    client_id: str
    shard: int
    num_shards: int
    ciphertexts: _containers.RepeatedScalarFieldContainer[bytes]
    num_examples: int
    paillier_key_id: str
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., client_id: _Optional[str] = ..., shard: _Optional[int] = ..., num_shards: _Optional[int] = ..., ciphertexts: _Optional[_Iterable[bytes]] = ..., num_examples: _Optional[int] = ..., paillier_key_id: _Optional[str] = ...) -> None: ...

class PrivacySpent(_message.Message):
    __slots__ = ("epsilon", "delta", "accountant")
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTANT_FIELD_NUMBER: _ClassVar[int]
    epsilon: float
    delta: float
    accountant: str
    def __init__(self, epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., accountant: _Optional[str] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("model_name", "version", "round_id", "weights", "artifact_uri", "weights_sha256", "format", "privacy", "contributors", "metrics")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_URI_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_SHA256_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    version: int
    round_id: int
    weights: bytes
    artifact_uri: str
    weights_sha256: bytes
    format: str
    privacy: PrivacySpent
    contributors: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.ScalarMap[str, float]
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., round_id: _Optional[int] = ..., weights: _Optional[bytes] = ..., artifact_uri: _Optional[str] = ..., weights_sha256: _Optional[bytes] = ..., format: _Optional[str] = ..., privacy: _Optional[_Union[PrivacySpent, _Mapping]] = ..., contributors: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Mapping[str, float]] = ...) -> None: ...
