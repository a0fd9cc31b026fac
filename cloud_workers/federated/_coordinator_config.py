"""A training run's parameters, how a round is announced, and the exact arithmetic of applying an aggregate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from schemas import DpPolicy, MaskKind, RoundAnnouncement, StragglerMode
from streams.federated import (
    LIMB_BITS,
    STATS_QUANT_RANGE,
    STATS_ROUND,
    RoundSpec,
    max_values_per_plaintext,
    policy_violation,
    scatter_masked,
    stats_num_params,
)

__all__ = ["WEIGHTS_FORMAT", "CoordinatorConfig", "apply_mean", "decode_weights", "encode_weights"]

WEIGHTS_FORMAT = "f64le"


def encode_weights(params: NDArray[np.float64]) -> bytes:
    """Flat little-endian float64 bytes: exact, so a restart recovers the very same parameters."""
    return np.asarray(params, dtype="<f8").tobytes()


def decode_weights(data: bytes) -> NDArray[np.float64]:
    """Inverse of :func:`encode_weights`."""
    if len(data) % 8:
        raise ValueError("weights are not a whole number of float64 values")
    return np.frombuffer(data, dtype="<f8").astype(np.float64)


def apply_mean(
    params: NDArray[np.float64],
    mask: NDArray[np.int64],
    masked_sum: NDArray[np.float64],
    total_weight: float,
    server_lr: float,
    noise: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """``params + server_lr * scatter(mask, (masked_sum + noise) / total_weight)``."""
    if total_weight <= 0:
        raise ValueError("total_weight must be positive")
    noisy = masked_sum if noise is None else masked_sum + noise
    return params + server_lr * scatter_masked(noisy / total_weight, mask, params.size)


@dataclass(frozen=True, kw_only=True)
class CoordinatorConfig:
    """One training run: who takes part, the codec, the straggler policy and how updates are applied."""

    model_name: str
    rounds: int
    invited: tuple[str, ...]
    min_clients: int
    paillier_key_id: str
    key_bits: int = 2048
    deadline_s: float = 30.0
    clip_norm: float = 5.0
    quant_bits: int = 16
    #: Quantisation range; ``None``: the clip norm (an L2-clipped vector never exceeds it per coordinate).
    quant_range: float | None = None
    mask_kind: int = MaskKind.MASK_KIND_RANDOM_K
    mask_fraction: float = 1.0
    #: ``MASK_KIND_EMA_EXPLORE``: EMA decay of |aggregate|, exploration share of k, and the longest any
    #: coordinate goes unsent (0: ``ceil(4 * num_params / k)``, a quarter of k spent on guaranteed visits).
    mask_ema_decay: float = 0.5
    mask_explore_fraction: float = 0.25
    mask_max_gap: int = 0
    num_shards: int = 1
    straggler_mode: int = StragglerMode.STRAGGLER_MODE_DROP
    staleness_alpha: float = 0.5
    max_staleness: int = 2
    #: Per-client noise share (distributed DP) and example weighting, passed on to the clients.
    client_noise_std: float = 0.0
    example_scale: float = 0.0
    server_lr: float = 1.0
    #: Central Gaussian noise on the sum, std ``central_noise_multiplier * clip_norm``; 0 = none.
    central_noise_multiplier: float = 0.0
    central_delta: float = 1e-5
    #: Secret seed of the central noise (the same noise after a restart, unknown to anyone else).
    noise_seed: int = 0
    seed: int = 0
    #: The record-level DP-SGD policy announced with every round (``dp_noise_multiplier`` 0: none announced, and
    #: the published epsilon is infinite). Each hospital must train with at least this noise multiplier and at
    #: most this sampling rate, steps per round and per-example clip norm.
    dp_noise_multiplier: float = 0.0
    dp_max_sample_rate: float = 1.0
    dp_max_steps_per_round: int = 1
    dp_max_grad_norm: float = 1.0
    dp_delta: float = 1e-5
    #: Features of the statistics round (round 0: every hospital's row count, feature sums and sums of squares,
    #: securely aggregated; the federation's standardiser is published with model version 0); 0 = no such round.
    stats_features: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 1 or not self.invited or len(set(self.invited)) != len(self.invited):
            raise ValueError("need rounds >= 1 and a non-empty list of distinct invited clients")
        if not 2 <= self.min_clients <= len(self.invited):
            # one contributor's "sum" is its update in the clear: secure aggregation needs at least two
            raise ValueError(f"min_clients must be in [2, {len(self.invited)}], got {self.min_clients}")
        if not 0 < self.mask_fraction <= 1 or self.num_shards < 1 or self.deadline_s < 0:
            raise ValueError("mask_fraction must be in (0, 1], num_shards >= 1 and deadline_s >= 0")
        if self.straggler_mode not in (StragglerMode.STRAGGLER_MODE_DROP, StragglerMode.STRAGGLER_MODE_FOLD):
            raise ValueError("straggler_mode must be DROP or FOLD")
        if self.central_noise_multiplier < 0 or not math.isfinite(self.server_lr):
            raise ValueError("central_noise_multiplier must be >= 0 and server_lr finite")
        if self.stats_features < 0:
            raise ValueError("stats_features must be >= 0")
        policy = self.dp_policy()
        if policy is not None and (why := policy_violation(policy)) is not None:
            raise ValueError(f"DP policy: {why}")

    def dp_policy(self) -> DpPolicy | None:
        """The DP policy every round announces, or None."""
        if self.dp_noise_multiplier == 0:
            return None
        return DpPolicy(
            noise_multiplier=self.dp_noise_multiplier,
            max_sample_rate=self.dp_max_sample_rate,
            max_steps_per_round=self.dp_max_steps_per_round,
            max_grad_norm=self.dp_max_grad_norm,
            delta=self.dp_delta,
        )

    def mask_seed(self, round_id: int) -> int:
        """The round's mask seed, derived from the run's seed."""
        return int(np.random.SeedSequence([self.seed, 0x3A5C, round_id]).generate_state(1, dtype=np.uint64)[0] >> 1)

    def announcement(self, round_id: int, model_version: int, num_params: int, now_ns: int) -> RoundAnnouncement:
        """The announcement of ``round_id`` (start offsets are added by the wiring)."""
        max_clients = len(self.invited)
        vpp = max_values_per_plaintext(self.key_bits, self.quant_bits, max_clients)
        k = max(1, min(num_params, round(self.mask_fraction * num_params)))
        num_ct = -(-k // vpp)
        ann = RoundAnnouncement(
            model_name=self.model_name,
            round_id=round_id,
            model_version=model_version,
            invited=sorted(self.invited),
            min_clients=self.min_clients,
            max_clients=max_clients,
            deadline=now_ns + int(self.deadline_s * 1e9),
            clip_norm=self.clip_norm,
            quant_bits=self.quant_bits,
            quant_range=self.quant_range if self.quant_range is not None else self.clip_norm,
            mask_kind=self.mask_kind,  # type: ignore[arg-type]
            mask_seed=self.mask_seed(round_id),
            mask_k=k,
            paillier_key_id=self.paillier_key_id,
            values_per_plaintext=vpp,
            num_params=num_params,
            num_shards=min(self.num_shards, num_ct),
            key_bits=self.key_bits,
            straggler_mode=self.straggler_mode,  # type: ignore[arg-type]
            staleness_alpha=self.staleness_alpha,
            max_staleness=self.max_staleness,
            noise_std=self.client_noise_std,
            example_scale=self.example_scale,
            announced_at=now_ns,
            server_lr=self.server_lr,
            rounds_planned=self.rounds,
            central_noise_multiplier=self.central_noise_multiplier,
            central_delta=self.central_delta,
        )
        if self.mask_kind == MaskKind.MASK_KIND_EMA_EXPLORE:
            ann.mask_ema_decay = self.mask_ema_decay
            ann.mask_explore_fraction = self.mask_explore_fraction
            ann.mask_max_gap = self.mask_max_gap or -(-4 * num_params // k)
        if (policy := self.dp_policy()) is not None:
            ann.dp_policy.CopyFrom(policy)
        RoundSpec.from_announcement(ann)  # refuse to announce what no client could encode
        return ann

    def stats_announcement(self, now_ns: int) -> RoundAnnouncement:
        """The announcement of the statistics round (round 0; see ``streams.federated._moments``): every limb
        sent, no noise, no DP policy (nothing is trained), the step-1 grid; start offsets are added by the wiring."""
        num_params = stats_num_params(self.stats_features)
        max_clients = len(self.invited)
        vpp = max_values_per_plaintext(self.key_bits, LIMB_BITS, max_clients)
        ann = RoundAnnouncement(
            model_name=self.model_name,
            round_id=STATS_ROUND,
            model_version=0,
            invited=sorted(self.invited),
            min_clients=self.min_clients,
            max_clients=max_clients,
            deadline=now_ns + int(self.deadline_s * 1e9),
            clip_norm=STATS_QUANT_RANGE * math.sqrt(num_params),  # the longest limb vector: never clipped
            quant_bits=LIMB_BITS,
            quant_range=STATS_QUANT_RANGE,
            mask_kind=MaskKind.MASK_KIND_RANDOM_K,
            mask_k=num_params,
            paillier_key_id=self.paillier_key_id,
            values_per_plaintext=vpp,
            num_params=num_params,
            num_shards=1,
            key_bits=self.key_bits,
            straggler_mode=StragglerMode.STRAGGLER_MODE_DROP,
            announced_at=now_ns,
            rounds_planned=self.rounds,
        )
        RoundSpec.from_announcement(ann)
        return ann
