"""End-to-end client encoding and aggregate decoding, free of any transport.

Client: ``update -> + residual -> shared mask -> clip -> (+ noise share) -> quantise -> pack ->
encrypt``. Aggregator: :class:`~streams.federated.EncryptedAccumulator`. Keyholder:
:func:`decrypt_aggregate`. Coordinator: :func:`decode_aggregate` then :func:`scatter_masked`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from streams.federated._mask import ErrorFeedback, as_mask
from streams.federated._packing import PackingOverflow, PackingSpec, pack, unpack
from streams.federated._paillier import (
    ObfuscatorPool,
    PrivateKey,
    PublicKey,
    decrypt_raw,
    encrypt_packed,
)
from streams.federated._quantize import QuantSpec, clip_by_l2, dequantize_sum, stochastic_quantize

__all__ = ["EncodeSpec", "client_encode", "decode_aggregate", "decrypt_aggregate", "scatter_masked"]


@dataclass(kw_only=True, frozen=True)
class EncodeSpec:
    """Everything a client needs (besides key and mask) to encode its update for a round.

    ``noise_std`` is the client's share of distributed Gaussian noise (see
    :func:`~streams.federated.distributed_noise_std`), added after clipping. Values beyond
    ``quant.range`` are clamped, so keep ``quant.range`` comfortably above the per-coordinate
    magnitudes (``clip_norm`` bounds them without noise).
    """

    clip_norm: float
    quant: QuantSpec
    packing: PackingSpec
    noise_std: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise ValueError(f"clip_norm must be positive and finite, got {self.clip_norm}")
        if self.quant.bits != self.packing.bits:
            raise ValueError(f"quant.bits {self.quant.bits} != packing.bits {self.packing.bits}")
        if not (math.isfinite(self.noise_std) and self.noise_std >= 0):
            raise ValueError(f"noise_std must be non-negative and finite, got {self.noise_std}")


def client_encode(
    update: ArrayLike,
    mask: ArrayLike,
    ef: ErrorFeedback,
    spec: EncodeSpec,
    pub: PublicKey,
    pool: ObfuscatorPool | None,
    rng: np.random.Generator,
) -> list[int]:
    """Encode one client's full-length ``update`` into Paillier ciphertexts of the masked values.

    Updates ``ef`` in place: coordinates outside ``mask``, and what clipping removed from those inside, are
    carried to the next round.
    ``rng`` drives stochastic rounding and the noise share; encryption randomness comes from
    the OS CSPRNG (via ``pool`` or phe).
    """
    if int(pub.n).bit_length() < spec.packing.key_bits:
        raise ValueError(f"public key is smaller than the packing's {spec.packing.key_bits} bits")
    compensated = ef.compensate(update)
    idx = as_mask(mask, ef.dim)
    values = clip_by_l2(compensated[idx], spec.clip_norm)
    ef.record_sent(compensated, idx, values)  # what clipping removed stays in the residual
    if spec.noise_std > 0:
        values = values + rng.normal(0.0, spec.noise_std, size=values.shape)
    q = stochastic_quantize(values, spec.quant, rng)
    return [encrypt_packed(pub, p, pool) for p in pack(q, spec.packing)]


def decrypt_aggregate(priv: PrivateKey, ciphertexts: Sequence[int]) -> list[int]:
    """Keyholder step: decrypt the aggregated ciphertexts to packed plaintext sums."""
    return [decrypt_raw(priv, ct) for ct in ciphertexts]


def decode_aggregate(
    sum_plaintexts: Sequence[int],
    spec: EncodeSpec,
    n_clients: int,
    length: int,
) -> NDArray[np.float64]:
    """Unpack and dequantise the packed sum of ``n_clients`` updates: the SUM of their masked values.

    Divide by ``n_clients`` for the mean. Raises :class:`PackingOverflow` when ``n_clients``
    exceeds the packing's ``max_clients`` or a slot holds more than ``n_clients`` could produce.
    """
    if not 1 <= n_clients <= spec.packing.max_clients:
        raise PackingOverflow(f"n_clients must be in [1, {spec.packing.max_clients}], got {n_clients}")
    slots = unpack(sum_plaintexts, spec.packing, length)
    if slots.size and int(slots.max()) > n_clients * spec.quant.levels:
        raise PackingOverflow("a slot exceeds what n_clients quantised values can sum to")
    return dequantize_sum(slots, spec.quant, n_clients)


def scatter_masked(values: ArrayLike, mask: ArrayLike, dim: int) -> NDArray[np.float64]:
    """Place masked ``values`` back into a zero vector of length ``dim``."""
    idx = as_mask(mask, dim)
    vals = np.asarray(values, dtype=np.float64)
    if vals.shape != idx.shape:
        raise ValueError(f"values shape {vals.shape} != mask shape {idx.shape}")
    out = np.zeros(dim, dtype=np.float64)
    out[idx] = vals
    return out
