"""L2 clipping and unbiased stochastic quantisation to non-negative integers.

A value ``x`` in ``[-range, range]`` maps onto the grid ``0 .. 2**bits - 1`` (step
``2 * range / (2**bits - 1)``) and is rounded up with probability equal to its fractional
position between grid points, so ``E[dequantize(q)] == x``. Values are non-negative so that a
Paillier sum of quantised vectors never wraps; :func:`dequantize_sum` removes the offset
``n_clients * range`` from such a sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "QuantSpec",
    "clip_by_l2",
    "dequantize",
    "dequantize_sum",
    "stochastic_quantize",
]

# Sums of up to 2**15 clients must still fit in int64 (and be exact in float64 up to 2**53).
_MAX_BITS = 32


@dataclass(kw_only=True, frozen=True)
class QuantSpec:
    """Quantisation grid: ``bits`` per value over the symmetric interval ``[-range, range]``."""

    bits: int
    range: float

    def __post_init__(self) -> None:
        if not 1 <= self.bits <= _MAX_BITS:
            raise ValueError(f"bits must be in [1, {_MAX_BITS}], got {self.bits}")
        if not (math.isfinite(self.range) and self.range > 0):
            raise ValueError(f"range must be positive and finite, got {self.range}")

    @property
    def levels(self) -> int:
        """Largest quantised integer, ``2**bits - 1``."""
        return (1 << self.bits) - 1

    @property
    def step(self) -> float:
        """Distance between adjacent grid points."""
        return 2.0 * self.range / self.levels


def clip_by_l2(vec: ArrayLike, clip_norm: float) -> NDArray[np.float64]:
    """Scale ``vec`` down so that its L2 norm is at most ``clip_norm`` (unchanged if already so)."""
    if not (math.isfinite(clip_norm) and clip_norm > 0):
        raise ValueError(f"clip_norm must be positive and finite, got {clip_norm}")
    values = np.asarray(vec, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("vec contains non-finite values")
    norm = float(np.linalg.norm(values))
    if norm <= clip_norm:
        return values.copy()
    return values * (clip_norm / norm)


def stochastic_quantize(values: ArrayLike, spec: QuantSpec, rng: np.random.Generator) -> NDArray[np.int64]:
    """Quantise ``values`` to integers in ``[0, 2**bits - 1]`` with unbiased stochastic rounding.

    Values outside ``[-range, range]`` are clamped first (which is the only source of bias);
    choose ``range`` at least the clip norm to rule that out for L2-clipped vectors.
    """
    x = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ValueError("values contain non-finite entries")
    scaled = (np.clip(x, -spec.range, spec.range) + spec.range) / spec.step
    scaled = np.clip(scaled, 0.0, float(spec.levels))  # guard against rounding past the ends
    low = np.floor(scaled)
    frac = scaled - low
    up = rng.random(size=x.shape) < frac
    q = low.astype(np.int64) + up.astype(np.int64)
    return np.minimum(q, spec.levels)


def dequantize(q: ArrayLike, spec: QuantSpec) -> NDArray[np.float64]:
    """Map one client's quantised integers back onto ``[-range, range]``."""
    return dequantize_sum(q, spec, 1)


def dequantize_sum(int_sums: ArrayLike, spec: QuantSpec, n_clients: int) -> NDArray[np.float64]:
    """Map the elementwise SUM of ``n_clients`` quantised vectors to the sum of their real values."""
    if n_clients < 1:
        raise ValueError(f"n_clients must be at least 1, got {n_clients}")
    sums = np.asarray(int_sums)
    if sums.size and not np.issubdtype(sums.dtype, np.integer):
        raise ValueError(f"int_sums must be integers, got dtype {sums.dtype}")
    return sums.astype(np.float64) * spec.step - n_clients * spec.range
