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
    MASK_KIND_EMA_EXPLORE: _ClassVar[MaskKind]

class StragglerMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRAGGLER_MODE_UNSPECIFIED: _ClassVar[StragglerMode]
    STRAGGLER_MODE_DROP: _ClassVar[StragglerMode]
    STRAGGLER_MODE_FOLD: _ClassVar[StragglerMode]
MASK_KIND_UNSPECIFIED: MaskKind
MASK_KIND_RANDOM_K: MaskKind
MASK_KIND_TOP_K_PREVIOUS: MaskKind
MASK_KIND_EMA_EXPLORE: MaskKind
STRAGGLER_MODE_UNSPECIFIED: StragglerMode
STRAGGLER_MODE_DROP: StragglerMode
STRAGGLER_MODE_FOLD: StragglerMode

class PartitionOffset(_message.Message):
    __slots__ = ("topic", "partition", "offset")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ...) -> None: ...

class RoundAnnouncement(_message.Message):
    __slots__ = ("model_name", "round_id", "model_version", "invited", "min_clients", "max_clients", "deadline", "clip_norm", "quant_bits", "quant_range", "mask_kind", "mask_seed", "mask_k", "paillier_key_id", "values_per_plaintext", "num_params", "num_shards", "key_bits", "straggler_mode", "staleness_alpha", "max_staleness", "start_offsets", "noise_std", "example_scale", "announced_at", "server_lr", "dp_policy", "rounds_planned", "mask_ema_decay", "mask_explore_fraction", "mask_max_gap", "central_noise_multiplier", "central_delta")
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
    NUM_PARAMS_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    KEY_BITS_FIELD_NUMBER: _ClassVar[int]
    STRAGGLER_MODE_FIELD_NUMBER: _ClassVar[int]
    STALENESS_ALPHA_FIELD_NUMBER: _ClassVar[int]
    MAX_STALENESS_FIELD_NUMBER: _ClassVar[int]
    START_OFFSETS_FIELD_NUMBER: _ClassVar[int]
    NOISE_STD_FIELD_NUMBER: _ClassVar[int]
    EXAMPLE_SCALE_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_AT_FIELD_NUMBER: _ClassVar[int]
    SERVER_LR_FIELD_NUMBER: _ClassVar[int]
    DP_POLICY_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_PLANNED_FIELD_NUMBER: _ClassVar[int]
    MASK_EMA_DECAY_FIELD_NUMBER: _ClassVar[int]
    MASK_EXPLORE_FRACTION_FIELD_NUMBER: _ClassVar[int]
    MASK_MAX_GAP_FIELD_NUMBER: _ClassVar[int]
    CENTRAL_NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    CENTRAL_DELTA_FIELD_NUMBER: _ClassVar[int]
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
    num_params: int
    num_shards: int
    key_bits: int
    straggler_mode: StragglerMode
    staleness_alpha: float
    max_staleness: int
    start_offsets: _containers.RepeatedCompositeFieldContainer[PartitionOffset]
    noise_std: float
    example_scale: float
    announced_at: int
    server_lr: float
    dp_policy: DpPolicy
    rounds_planned: int
    mask_ema_decay: float
    mask_explore_fraction: float
    mask_max_gap: int
    central_noise_multiplier: float
    central_delta: float
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., model_version: _Optional[int] = ..., invited: _Optional[_Iterable[str]] = ..., min_clients: _Optional[int] = ..., max_clients: _Optional[int] = ..., deadline: _Optional[int] = ..., clip_norm: _Optional[float] = ..., quant_bits: _Optional[int] = ..., quant_range: _Optional[float] = ..., mask_kind: _Optional[_Union[MaskKind, str]] = ..., mask_seed: _Optional[int] = ..., mask_k: _Optional[int] = ..., paillier_key_id: _Optional[str] = ..., values_per_plaintext: _Optional[int] = ..., num_params: _Optional[int] = ..., num_shards: _Optional[int] = ..., key_bits: _Optional[int] = ..., straggler_mode: _Optional[_Union[StragglerMode, str]] = ..., staleness_alpha: _Optional[float] = ..., max_staleness: _Optional[int] = ..., start_offsets: _Optional[_Iterable[_Union[PartitionOffset, _Mapping]]] = ..., noise_std: _Optional[float] = ..., example_scale: _Optional[float] = ..., announced_at: _Optional[int] = ..., server_lr: _Optional[float] = ..., dp_policy: _Optional[_Union[DpPolicy, _Mapping]] = ..., rounds_planned: _Optional[int] = ..., mask_ema_decay: _Optional[float] = ..., mask_explore_fraction: _Optional[float] = ..., mask_max_gap: _Optional[int] = ..., central_noise_multiplier: _Optional[float] = ..., central_delta: _Optional[float] = ...) -> None: ...

class DpPolicy(_message.Message):
    __slots__ = ("noise_multiplier", "max_sample_rate", "max_steps_per_round", "max_grad_norm", "delta")
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_PER_ROUND_FIELD_NUMBER: _ClassVar[int]
    MAX_GRAD_NORM_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    noise_multiplier: float
    max_sample_rate: float
    max_steps_per_round: int
    max_grad_norm: float
    delta: float
    def __init__(self, noise_multiplier: _Optional[float] = ..., max_sample_rate: _Optional[float] = ..., max_steps_per_round: _Optional[int] = ..., max_grad_norm: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class DpStep(_message.Message):
    __slots__ = ("noise_multiplier", "sample_rate", "steps")
    NOISE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    noise_multiplier: float
    sample_rate: float
    steps: int
    def __init__(self, noise_multiplier: _Optional[float] = ..., sample_rate: _Optional[float] = ..., steps: _Optional[int] = ...) -> None: ...

class AccountantState(_message.Message):
    __slots__ = ("history", "rounds_trained", "delta")
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_TRAINED_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    history: _containers.RepeatedCompositeFieldContainer[DpStep]
    rounds_trained: int
    delta: float
    def __init__(self, history: _Optional[_Iterable[_Union[DpStep, _Mapping]]] = ..., rounds_trained: _Optional[int] = ..., delta: _Optional[float] = ...) -> None: ...

class ModelUpdate(_message.Message):
    __slots__ = ("model_name", "round_id", "client_id", "shard", "num_shards", "ciphertexts", "num_examples", "paillier_key_id", "epsilon", "delta", "round_dp", "accountant")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    NUM_SHARDS_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    PAILLIER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ROUND_DP_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTANT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    round_id: int
    client_id: str
    shard: int
    num_shards: int
    ciphertexts: _containers.RepeatedScalarFieldContainer[bytes]
    num_examples: int
    paillier_key_id: str
    epsilon: float
    delta: float
    round_dp: DpStep
    accountant: AccountantState
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., client_id: _Optional[str] = ..., shard: _Optional[int] = ..., num_shards: _Optional[int] = ..., ciphertexts: _Optional[_Iterable[bytes]] = ..., num_examples: _Optional[int] = ..., paillier_key_id: _Optional[str] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., round_dp: _Optional[_Union[DpStep, _Mapping]] = ..., accountant: _Optional[_Union[AccountantState, _Mapping]] = ...) -> None: ...

class EnvelopeRef(_message.Message):
    __slots__ = ("topic", "partition", "offset", "envelope_sha256")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_SHA256_FIELD_NUMBER: _ClassVar[int]
    topic: str
    partition: int
    offset: int
    envelope_sha256: bytes
    def __init__(self, topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., envelope_sha256: _Optional[bytes] = ...) -> None: ...

class UpdateReceipt(_message.Message):
    __slots__ = ("model_name", "round_id", "shard", "client_id", "hospital_id", "update_sha256", "num_examples", "epsilon", "delta", "parts")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    HOSPITAL_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    round_id: int
    shard: int
    client_id: str
    hospital_id: str
    update_sha256: bytes
    num_examples: int
    epsilon: float
    delta: float
    parts: _containers.RepeatedCompositeFieldContainer[EnvelopeRef]
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., shard: _Optional[int] = ..., client_id: _Optional[str] = ..., hospital_id: _Optional[str] = ..., update_sha256: _Optional[bytes] = ..., num_examples: _Optional[int] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., parts: _Optional[_Iterable[_Union[EnvelopeRef, _Mapping]]] = ...) -> None: ...

class RoundContributor(_message.Message):
    __slots__ = ("client_id", "update_sha256", "num_examples", "epsilon", "delta")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    NUM_EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    update_sha256: _containers.RepeatedScalarFieldContainer[bytes]
    num_examples: int
    epsilon: float
    delta: float
    def __init__(self, client_id: _Optional[str] = ..., update_sha256: _Optional[_Iterable[bytes]] = ..., num_examples: _Optional[int] = ..., epsilon: _Optional[float] = ..., delta: _Optional[float] = ...) -> None: ...

class RoundClose(_message.Message):
    __slots__ = ("model_name", "round_id", "contributors", "closed_at", "announcement")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCEMENT_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    round_id: int
    contributors: _containers.RepeatedCompositeFieldContainer[RoundContributor]
    closed_at: int
    announcement: RoundAnnouncement
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., contributors: _Optional[_Iterable[_Union[RoundContributor, _Mapping]]] = ..., closed_at: _Optional[int] = ..., announcement: _Optional[_Union[RoundAnnouncement, _Mapping]] = ...) -> None: ...

class ContributorRef(_message.Message):
    __slots__ = ("client_id", "update_sha256", "parts")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_SHA256_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    update_sha256: bytes
    parts: _containers.RepeatedCompositeFieldContainer[EnvelopeRef]
    def __init__(self, client_id: _Optional[str] = ..., update_sha256: _Optional[bytes] = ..., parts: _Optional[_Iterable[_Union[EnvelopeRef, _Mapping]]] = ...) -> None: ...

class EncryptedSum(_message.Message):
    __slots__ = ("model_name", "round_id", "shard", "paillier_key_id", "ciphertexts", "contributors")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    PAILLIER_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    round_id: int
    shard: int
    paillier_key_id: str
    ciphertexts: _containers.RepeatedScalarFieldContainer[bytes]
    contributors: _containers.RepeatedCompositeFieldContainer[ContributorRef]
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., shard: _Optional[int] = ..., paillier_key_id: _Optional[str] = ..., ciphertexts: _Optional[_Iterable[bytes]] = ..., contributors: _Optional[_Iterable[_Union[ContributorRef, _Mapping]]] = ...) -> None: ...

class PlainAggregate(_message.Message):
    __slots__ = ("model_name", "round_id", "shard", "values", "contributors", "contributors_sha256", "sum_sha256", "privacy")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    ROUND_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_FIELD_NUMBER: _ClassVar[int]
    CONTRIBUTORS_SHA256_FIELD_NUMBER: _ClassVar[int]
    SUM_SHA256_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    round_id: int
    shard: int
    values: _containers.RepeatedScalarFieldContainer[float]
    contributors: _containers.RepeatedScalarFieldContainer[str]
    contributors_sha256: bytes
    sum_sha256: bytes
    privacy: _containers.RepeatedCompositeFieldContainer[ContributorPrivacy]
    def __init__(self, model_name: _Optional[str] = ..., round_id: _Optional[int] = ..., shard: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ..., contributors: _Optional[_Iterable[str]] = ..., contributors_sha256: _Optional[bytes] = ..., sum_sha256: _Optional[bytes] = ..., privacy: _Optional[_Iterable[_Union[ContributorPrivacy, _Mapping]]] = ...) -> None: ...

class ContributorPrivacy(_message.Message):
    __slots__ = ("client_id", "round_dp", "rounds_trained")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROUND_DP_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_TRAINED_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    round_dp: DpStep
    rounds_trained: int
    def __init__(self, client_id: _Optional[str] = ..., round_dp: _Optional[_Union[DpStep, _Mapping]] = ..., rounds_trained: _Optional[int] = ...) -> None: ...

class ClientPrivacy(_message.Message):
    __slots__ = ("client_id", "rounds", "epsilon", "history")
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    client_id: str
    rounds: int
    epsilon: float
    history: _containers.RepeatedCompositeFieldContainer[DpStep]
    def __init__(self, client_id: _Optional[str] = ..., rounds: _Optional[int] = ..., epsilon: _Optional[float] = ..., history: _Optional[_Iterable[_Union[DpStep, _Mapping]]] = ...) -> None: ...

class PrivacySpent(_message.Message):
    __slots__ = ("epsilon", "delta", "accountant", "mechanism", "clients")
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    ACCOUNTANT_FIELD_NUMBER: _ClassVar[int]
    MECHANISM_FIELD_NUMBER: _ClassVar[int]
    CLIENTS_FIELD_NUMBER: _ClassVar[int]
    epsilon: float
    delta: float
    accountant: str
    mechanism: str
    clients: _containers.RepeatedCompositeFieldContainer[ClientPrivacy]
    def __init__(self, epsilon: _Optional[float] = ..., delta: _Optional[float] = ..., accountant: _Optional[str] = ..., mechanism: _Optional[str] = ..., clients: _Optional[_Iterable[_Union[ClientPrivacy, _Mapping]]] = ...) -> None: ...

class ModelVersion(_message.Message):
    __slots__ = ("model_name", "version", "round_id", "weights", "artifact_uri", "weights_sha256", "format", "privacy", "contributors", "metrics", "central_privacy", "mask_ema")
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
    CENTRAL_PRIVACY_FIELD_NUMBER: _ClassVar[int]
    MASK_EMA_FIELD_NUMBER: _ClassVar[int]
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
    central_privacy: PrivacySpent
    mask_ema: bytes
    def __init__(self, model_name: _Optional[str] = ..., version: _Optional[int] = ..., round_id: _Optional[int] = ..., weights: _Optional[bytes] = ..., artifact_uri: _Optional[str] = ..., weights_sha256: _Optional[bytes] = ..., format: _Optional[str] = ..., privacy: _Optional[_Union[PrivacySpent, _Mapping]] = ..., contributors: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Mapping[str, float]] = ..., central_privacy: _Optional[_Union[PrivacySpent, _Mapping]] = ..., mask_ema: _Optional[bytes] = ...) -> None: ...
