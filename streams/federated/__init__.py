"""The wire codec of federated-learning updates: packed Paillier secure aggregation maths.

Shared by the hospital-side client (``edge_agent``) and the cloud roles (``cloud_workers``), which may not
import each other.

Clients send masked, clipped, stochastically quantised, BatchCrypt-packed, Paillier-encrypted
updates; an aggregator with only the public key multiplies ciphertexts; a keyholder decrypts only
sums; the coordinator dequantises and applies the aggregate. All coordinates sent in a round come
from one shared mask (seeded random-k or top-k of the previous global update), with client-side
error feedback for the rest. DP accounting uses opacus's RDP accountant.
"""

from streams.federated._dp import (
    OPACUS_DEFAULT_ORDERS,
    RDP_ORDERS,
    distributed_noise_std,
    epsilon_for,
    gaussian_mechanism_sigma,
    noise_multiplier_for,
)
from streams.federated._keyfiles import (
    CLIENT_SECRET_FILE,
    PAILLIER_PRIVATE_FILE,
    PAILLIER_PUBLIC_FILE,
    create_client_secret,
    load_client_secret,
    paillier_private_files,
)
from streams.federated._mask import (
    ErrorFeedback,
    as_mask,
    ema_explore_mask,
    random_k_mask,
    round_robin_share,
    top_k_mask,
    update_ema,
)
from streams.federated._packing import (
    PLAINTEXT_MARGIN_BITS,
    PackedAccumulator,
    PackingOverflow,
    PackingSpec,
    max_values_per_plaintext,
    pack,
    unpack,
)
from streams.federated._paillier import (
    EncryptedAccumulator,
    ObfuscatorPool,
    PrivateKey,
    PublicKey,
    add_ciphertexts,
    ciphertext_bytes,
    ciphertext_from_bytes,
    ciphertext_to_bytes,
    decrypt_raw,
    encrypt_packed,
    encrypt_with_obfuscator,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    obfuscator,
    private_key_from_json,
    private_key_to_json,
    public_key_from_json,
    public_key_to_json,
    save_private_key,
    save_public_key,
)
from streams.federated._pipeline import (
    EncodeSpec,
    client_encode,
    decode_aggregate,
    decrypt_aggregate,
    scatter_masked,
)
from streams.federated._policy import (
    dp_step_violation,
    history_epsilon,
    policy_entry,
    policy_violation,
    sum_noise_multiplier,
)
from streams.federated._quantize import (
    QuantSpec,
    clip_by_l2,
    dequantize,
    dequantize_sum,
    stochastic_quantize,
)
from streams.federated._round import RoundSpec, shard_bounds, staleness_weight, update_key

__all__ = [
    "CLIENT_SECRET_FILE",
    "OPACUS_DEFAULT_ORDERS",
    "PAILLIER_PRIVATE_FILE",
    "PAILLIER_PUBLIC_FILE",
    "PLAINTEXT_MARGIN_BITS",
    "RDP_ORDERS",
    "EncodeSpec",
    "EncryptedAccumulator",
    "ErrorFeedback",
    "ObfuscatorPool",
    "PackedAccumulator",
    "PackingOverflow",
    "PackingSpec",
    "PrivateKey",
    "PublicKey",
    "QuantSpec",
    "RoundSpec",
    "add_ciphertexts",
    "as_mask",
    "ciphertext_bytes",
    "ciphertext_from_bytes",
    "ciphertext_to_bytes",
    "client_encode",
    "clip_by_l2",
    "create_client_secret",
    "decode_aggregate",
    "decrypt_aggregate",
    "decrypt_raw",
    "dequantize",
    "dequantize_sum",
    "distributed_noise_std",
    "dp_step_violation",
    "ema_explore_mask",
    "encrypt_packed",
    "encrypt_with_obfuscator",
    "epsilon_for",
    "gaussian_mechanism_sigma",
    "generate_keypair",
    "history_epsilon",
    "key_id",
    "load_client_secret",
    "load_private_key",
    "load_public_key",
    "max_values_per_plaintext",
    "noise_multiplier_for",
    "obfuscator",
    "pack",
    "paillier_private_files",
    "policy_entry",
    "policy_violation",
    "private_key_from_json",
    "private_key_to_json",
    "public_key_from_json",
    "public_key_to_json",
    "random_k_mask",
    "round_robin_share",
    "save_private_key",
    "save_public_key",
    "scatter_masked",
    "shard_bounds",
    "staleness_weight",
    "stochastic_quantize",
    "sum_noise_multiplier",
    "top_k_mask",
    "unpack",
    "update_ema",
    "update_key",
]
