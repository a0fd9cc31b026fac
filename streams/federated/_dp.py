"""Differential-privacy accounting for federated rounds, via opacus's RDP accountant.

One round is one step of the (sub)sampled Gaussian mechanism: ``sample_rate`` is the fraction
of clients taking part, and the noise standard deviation on the SUM of clipped updates is
``noise_multiplier * clip_norm``. Functions are pure: each builds a fresh accountant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = [
    "OPACUS_DEFAULT_ORDERS",
    "RDP_ORDERS",
    "distributed_noise_std",
    "epsilon_for",
    "gaussian_mechanism_sigma",
    "noise_multiplier_for",
]


OPACUS_DEFAULT_ORDERS: tuple[float, ...] = (*(1 + x / 10.0 for x in range(1, 100)), *range(12, 64))
"""``opacus.accountants.RDPAccountant.DEFAULT_ALPHAS`` (copied so importing this package does not
pull in torch; opacus is imported lazily by the functions below)."""

RDP_ORDERS: tuple[float, ...] = (
    *OPACUS_DEFAULT_ORDERS,
    *(64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024),
)
"""RDP orders searched: opacus's defaults (up to 63) plus larger ones, which the noise search
and small-epsilon / low-sample-rate settings need. Where opacus's own optimum lies below 63, the
extra orders cannot change the result, so epsilons equal opacus's default accounting."""


def _check(sample_rate: float, steps: int, delta: float) -> None:
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate}")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def epsilon_for(
    noise_multiplier: float,
    sample_rate: float,
    steps: int,
    delta: float,
    *,
    orders: Sequence[float] = RDP_ORDERS,
) -> float:
    """Epsilon spent after ``steps`` rounds of the sampled Gaussian mechanism (RDP accountant)."""
    _check(sample_rate, steps, delta)
    if not noise_multiplier > 0:
        raise ValueError(f"noise_multiplier must be positive, got {noise_multiplier}")
    from opacus.accountants import RDPAccountant  # lazy: opacus imports torch

    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, sample_rate, steps)]
    return float(accountant.get_epsilon(delta=delta, alphas=list(orders)))


def noise_multiplier_for(
    target_epsilon: float,
    delta: float,
    sample_rate: float,
    steps: int,
    *,
    orders: Sequence[float] = RDP_ORDERS,
) -> float:
    """Noise multiplier keeping ``epsilon_for(...) <= target_epsilon`` (opacus's binary search,
    tolerance 0.01 in epsilon; the result errs on the side of more noise)."""
    _check(sample_rate, steps, delta)
    if not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be positive, got {target_epsilon}")
    from opacus.accountants.utils import get_noise_multiplier  # lazy: opacus imports torch

    return float(
        get_noise_multiplier(
            target_epsilon=target_epsilon,
            target_delta=delta,
            sample_rate=sample_rate,
            steps=steps,
            accountant="rdp",
            alphas=list(orders),
        )
    )


def gaussian_mechanism_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Noise std for a single (epsilon, delta) Gaussian release of an L2-``sensitivity`` sum.

    Calibrated with the RDP accountant (one step, no subsampling), which, unlike the classic
    ``sqrt(2 ln(1.25/delta)) / epsilon`` bound, is valid for any epsilon.
    """
    if not (math.isfinite(sensitivity) and sensitivity > 0):
        raise ValueError(f"sensitivity must be positive and finite, got {sensitivity}")
    return sensitivity * noise_multiplier_for(epsilon, delta, 1.0, 1)


def distributed_noise_std(noise_multiplier: float, clip_norm: float, n_clients: int) -> float:
    """Per-client Gaussian std so that the sum of ``n_clients`` noises has std ``noise_multiplier * clip_norm``.

    Each client adds its share before encryption, so nobody (not even the keyholder) sees the
    un-noised sum; the guarantee holds only if all ``n_clients`` shares are actually added.
    """
    if n_clients < 1:
        raise ValueError(f"n_clients must be at least 1, got {n_clients}")
    if noise_multiplier < 0 or clip_norm <= 0:
        raise ValueError("noise_multiplier must be non-negative and clip_norm positive")
    return noise_multiplier * clip_norm / math.sqrt(n_clients)
