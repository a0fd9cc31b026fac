"""One round's codec parameters as its announcement states them: shared by clients and cloud roles.

A :class:`RoundSpec` is built from a ``schemas.RoundAnnouncement`` and answers everything a party needs to
encode, add, decrypt or apply that round's updates bit-for-bit alike: the encode spec, the shared mask,
how the ciphertext vector is cut into shards, a client's example weight and a late update's staleness weight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from schemas import MaskKind, RoundAnnouncement, StragglerMode
from streams.federated._mask import ema_explore_mask, random_k_mask, round_robin_share, top_k_mask
from streams.federated._packing import PackingSpec
from streams.federated._pipeline import EncodeSpec
from streams.federated._quantize import QuantSpec

__all__ = ["RoundSpec", "shard_bounds", "staleness_weight", "update_key"]


def update_key(model_name: str, round_id: int, shard: int) -> bytes:
    """Kafka key of one shard's update (and of its receipt and sum): ``model/round/shard``."""
    return f"{model_name}/{round_id}/{shard}".encode()


def shard_bounds(num_ciphertexts: int, num_shards: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ciphertext index ranges of ``num_shards`` contiguous, non-empty, near-equal shards."""
    if num_ciphertexts < 1 or not 1 <= num_shards <= num_ciphertexts:
        raise ValueError(f"need 1 <= num_shards ({num_shards}) <= num_ciphertexts ({num_ciphertexts})")
    return [(s * num_ciphertexts // num_shards, (s + 1) * num_ciphertexts // num_shards) for s in range(num_shards)]


def staleness_weight(staleness: int, alpha: float) -> float:
    """FedBuff's polynomial staleness weight ``(1 + staleness) ** -alpha`` (1 for a fresh update)."""
    if staleness < 0 or not (math.isfinite(alpha) and alpha >= 0):
        raise ValueError("staleness must be >= 0 and alpha finite and >= 0")
    return float((1.0 + staleness) ** -alpha)


@dataclass(frozen=True, kw_only=True)
class RoundSpec:
    """The codec parameters of one round (see :meth:`from_announcement`)."""

    model_name: str
    round_id: int
    model_version: int
    num_params: int
    mask_kind: int
    mask_seed: int
    mask_k: int
    clip_norm: float
    quant_bits: int
    quant_range: float
    max_clients: int
    values_per_plaintext: int
    key_bits: int
    num_shards: int
    paillier_key_id: str
    noise_std: float = 0.0
    example_scale: float = 0.0
    fold_late: bool = False
    staleness_alpha: float = 0.5
    max_staleness: int = 0
    mask_ema_decay: float = 0.0
    mask_explore_fraction: float = 0.0
    mask_max_gap: int = 0

    @classmethod
    def from_announcement(cls, ann: RoundAnnouncement) -> RoundSpec:
        """Validate an announcement and extract its codec parameters; ``ValueError`` if inconsistent."""
        spec = cls(
            model_name=ann.model_name,
            round_id=ann.round_id,
            model_version=ann.model_version,
            num_params=ann.num_params,
            mask_kind=ann.mask_kind,
            mask_seed=ann.mask_seed,
            mask_k=ann.mask_k,
            clip_norm=ann.clip_norm,
            quant_bits=ann.quant_bits,
            quant_range=ann.quant_range,
            max_clients=ann.max_clients,
            values_per_plaintext=ann.values_per_plaintext,
            key_bits=ann.key_bits,
            num_shards=ann.num_shards,
            paillier_key_id=ann.paillier_key_id,
            noise_std=ann.noise_std,
            example_scale=ann.example_scale,
            fold_late=ann.straggler_mode == StragglerMode.STRAGGLER_MODE_FOLD,
            staleness_alpha=ann.staleness_alpha,
            max_staleness=ann.max_staleness,
            mask_ema_decay=ann.mask_ema_decay,
            mask_explore_fraction=ann.mask_explore_fraction,
            mask_max_gap=ann.mask_max_gap,
        )
        spec.validate()
        return spec

    def validate(self) -> None:
        """Raise ``ValueError`` when the parameters cannot describe a round."""
        if not self.model_name:  # round 0 is the statistics round (``stats_round_violation`` says what it must be)
            raise ValueError("a round needs a model name")
        if not 1 <= self.mask_k <= self.num_params:
            raise ValueError(f"mask_k must be in [1, num_params={self.num_params}], got {self.mask_k}")
        kinds = (MaskKind.MASK_KIND_RANDOM_K, MaskKind.MASK_KIND_TOP_K_PREVIOUS, MaskKind.MASK_KIND_EMA_EXPLORE)
        if self.mask_kind not in kinds:
            raise ValueError(f"unknown mask kind {self.mask_kind}")
        if self.mask_kind == MaskKind.MASK_KIND_EMA_EXPLORE:
            if not (0 <= self.mask_ema_decay < 1 and 0 <= self.mask_explore_fraction <= 1 and self.mask_max_gap >= 1):
                raise ValueError("EMA mask needs decay in [0, 1), explore fraction in [0, 1] and max gap >= 1")
            if round_robin_share(self.num_params, self.mask_max_gap) > self.mask_k:
                raise ValueError(f"mask_max_gap {self.mask_max_gap} needs more than mask_k guaranteed visits per round")
        if not self.paillier_key_id:
            raise ValueError("a round needs a Paillier key id")
        if not (math.isfinite(self.example_scale) and self.example_scale >= 0):
            raise ValueError("example_scale must be finite and >= 0")
        shard_bounds(self.num_ciphertexts, self.num_shards)
        _ = self.encode_spec  # QuantSpec / PackingSpec / EncodeSpec validate themselves

    @property
    def quant(self) -> QuantSpec:
        """The quantisation grid."""
        return QuantSpec(bits=self.quant_bits, range=self.quant_range)

    @property
    def packing(self) -> PackingSpec:
        """The packing layout."""
        return PackingSpec(
            bits=self.quant_bits,
            max_clients=self.max_clients,
            values_per_plaintext=self.values_per_plaintext,
            key_bits=self.key_bits,
        )

    @property
    def encode_spec(self) -> EncodeSpec:
        """What :func:`~streams.federated.client_encode` needs besides key and mask."""
        return EncodeSpec(clip_norm=self.clip_norm, quant=self.quant, packing=self.packing, noise_std=self.noise_std)

    @property
    def num_ciphertexts(self) -> int:
        """Ciphertexts in one client's whole update."""
        return self.packing.num_plaintexts(self.mask_k)

    def shard_ciphertexts(self, shard: int) -> tuple[int, int]:
        """``[start, stop)`` of ``shard`` in the client's ciphertext vector."""
        return shard_bounds(self.num_ciphertexts, self.num_shards)[shard]

    def shard_values(self, shard: int) -> tuple[int, int]:
        """``[start, stop)`` of ``shard`` in the masked value vector (length ``mask_k``)."""
        start, stop = self.shard_ciphertexts(shard)
        vpp = self.values_per_plaintext
        return start * vpp, min(stop * vpp, self.mask_k)

    def mask(self, prev_global_update: ArrayLike | None = None, *, ema: ArrayLike | None = None) -> NDArray[np.int64]:
        """The round's shared coordinates: seeded random-k; top-k of the previous global update (random-k from
        the seed when there is none yet, i.e. in the first round); or :func:`~streams.federated.ema_explore_mask`
        of the EMA the announced model version carries (zeros when it carries none)."""
        if self.mask_k == self.num_params:
            return np.arange(self.num_params, dtype=np.int64)
        if self.mask_kind == MaskKind.MASK_KIND_EMA_EXPLORE:
            scores = np.zeros(self.num_params) if ema is None else np.asarray(ema, dtype=np.float64)
            if scores.shape != (self.num_params,):
                raise ValueError(f"the mask EMA has shape {scores.shape}, the round {self.num_params} parameters")
            return ema_explore_mask(
                scores,
                self.mask_k,
                round_id=self.round_id,
                seed=self.mask_seed,
                explore_fraction=self.mask_explore_fraction,
                max_gap=self.mask_max_gap,
            )
        if self.mask_kind == MaskKind.MASK_KIND_TOP_K_PREVIOUS and prev_global_update is not None:
            return top_k_mask(prev_global_update, self.mask_k)
        return random_k_mask(self.num_params, self.mask_k, self.mask_seed)

    def example_weight(self, num_examples: int) -> float:
        """The factor a client scales its update by: ``num_examples / example_scale``, or 1."""
        if self.example_scale <= 0:
            return 1.0
        return num_examples / self.example_scale
