"""Feature standardisation from securely aggregated sums: the maths of the statistics round (round 0).

Before the first training round each hospital sends its row count, per-feature sum and per-feature sum of
squares through the same packed-Paillier secure aggregation as a model update; the keyholder decrypts only the
sum (with its own minimum of contributors), so every hospital standardises with the federation's mean and
standard deviation while nobody sees one hospital's statistics.

Exact integer sums, not a stochastic grid: each hospital rounds every feature value to a fixed-point integer
``X = round(x * 2**FRACTION_BITS)`` and computes, exactly in integers, its row count ``n``, ``S = sum X`` and
``SS = sum X**2`` per feature. Each moment travels as ``LIMBS`` limbs of ``LIMB_BITS`` bits (two's complement
modulo ``2**(LIMBS * LIMB_BITS)``); a limb ``q`` is sent as the value ``q - range`` of a round whose quantisation
grid has step exactly 1 (``quant_bits = LIMB_BITS``, ``quant_range = (2**LIMB_BITS - 1) / 2``), so the keyholder's
ordinary dequantised sum is the integer sum of the limbs minus a known offset, and carrying the limb sums
recovers the exact federation-wide ``n``, ``S`` and ``SS``. Mean and variance then follow in exact rational
arithmetic (``(n SS - S**2) / n**2``: no cancellation), so the standardiser is the exact population mean and
standard deviation of all hospitals' rows rounded to ``2**-FRACTION_BITS``; the only error is that rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
from numpy.typing import ArrayLike, NDArray

from schemas import RoundAnnouncement

__all__ = [
    "FRACTION_BITS",
    "LIMBS",
    "LIMB_BITS",
    "STATS_QUANT_RANGE",
    "STATS_ROUND",
    "add_moments",
    "decode_moment_sums",
    "encode_moments",
    "feature_moments",
    "moment_values",
    "standardiser_from_metrics",
    "standardiser_from_moments",
    "standardiser_metrics",
    "stats_num_params",
    "stats_round_violation",
]

#: The round id of the statistics round (training rounds start at 1).
STATS_ROUND = 0
LIMB_BITS = 16
LIMBS = 8
FRACTION_BITS = 24
#: Quantisation range of the statistics round: a grid of step exactly 1 over ``0 .. 2**LIMB_BITS - 1``.
STATS_QUANT_RANGE = ((1 << LIMB_BITS) - 1) / 2
_TOTAL_BITS = LIMBS * LIMB_BITS
_MODULUS = 1 << _TOTAL_BITS


def feature_moments(X: ArrayLike) -> list[int]:
    """``[n, S_1 .. S_d, SS_1 .. SS_d]`` of the rows ``X`` (n × d), exact integers of the fixed-point values
    ``round(x * 2**FRACTION_BITS)`` (``S`` at scale ``2**FRACTION_BITS``, ``SS`` at its square)."""
    x = np.asarray(X, dtype=np.float64)
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise ValueError("X must be a finite (n, d) array")
    fixed = [[round(math.ldexp(v, FRACTION_BITS)) for v in col] for col in x.T.tolist()]
    return [x.shape[0], *(sum(col) for col in fixed), *(sum(v * v for v in col) for col in fixed)]


def add_moments(*moments: Sequence[int]) -> list[int]:
    """The elementwise sum of several hospitals' :func:`feature_moments` (what the secure sum computes)."""
    if not moments or len({len(m) for m in moments}) != 1:
        raise ValueError("need at least one moment vector, all of one length")
    return [sum(int(m[i]) for m in moments) for i in range(len(moments[0]))]


def standardiser_from_moments(moments: Sequence[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(mean, population standard deviation) per feature from summed :func:`feature_moments`, in exact rational
    arithmetic; a feature of zero variance gets standard deviation 1 (it is then only centred)."""
    m = [int(v) for v in moments]
    if len(m) < 3 or len(m) % 2 != 1 or m[0] < 1:
        raise ValueError("moments must be [n >= 1, sums (d), sums of squares (d)]")
    d, n = (len(m) - 1) // 2, m[0]
    scale = 1 << FRACTION_BITS
    mean = np.array([float(Fraction(m[1 + i], n * scale)) for i in range(d)])
    var = [Fraction(n * m[1 + d + i] - m[1 + i] ** 2, (n * scale) ** 2) for i in range(d)]
    if any(v < 0 for v in var):
        raise ValueError("the sums of squares are smaller than the sums allow: not moments of real rows")
    std = np.sqrt(np.array([float(v) for v in var]))
    std[std == 0] = 1.0
    return mean, std


def stats_num_params(n_features: int) -> int:
    """Length of a statistics round's vector for ``n_features`` features: ``(2 d + 1) * LIMBS`` limbs."""
    if n_features < 1:
        raise ValueError("need at least one feature")
    return (2 * n_features + 1) * LIMBS


def encode_moments(moments: Sequence[int]) -> NDArray[np.int64]:
    """The limbs (each in ``[0, 2**LIMB_BITS)``, least significant first per moment) of integer ``moments``."""
    limit = 1 << (_TOTAL_BITS - 1 - 16)  # head room for the sum of up to 2**16 hospitals
    out = np.empty(len(moments) * LIMBS, dtype=np.int64)
    mask = (1 << LIMB_BITS) - 1
    for i, v in enumerate(moments):
        if not isinstance(v, int | np.integer) or abs(int(v)) >= limit:
            raise ValueError(f"moment {v!r} is not an integer of the statistics round's range")
        word = int(v) % _MODULUS
        for j in range(LIMBS):
            out[i * LIMBS + j] = (word >> (j * LIMB_BITS)) & mask
    return out


def moment_values(limbs: ArrayLike) -> NDArray[np.float64]:
    """What a client's limbs (:func:`encode_moments`) stand for on the round's grid: ``limb - STATS_QUANT_RANGE``
    (the step-1 grid quantises it back to ``limb`` exactly)."""
    return np.asarray(limbs, dtype=np.float64) - STATS_QUANT_RANGE


def decode_moment_sums(dequantised_sum: ArrayLike, n_contributors: int) -> list[int]:
    """The exact sum of the contributors' integer moments from the keyholder's dequantised sum of their limbs
    (``sum of limbs - n * STATS_QUANT_RANGE``); ``ValueError`` if the values are not such a sum."""
    v = np.asarray(dequantised_sum, dtype=np.float64)
    if v.ndim != 1 or v.size % LIMBS or n_contributors < 1:
        raise ValueError(f"a statistics sum has a multiple of {LIMBS} values and at least one contributor")
    raw = v + n_contributors * STATS_QUANT_RANGE
    ints = np.rint(raw)
    if not np.all(np.abs(raw - ints) < 1e-6) or ints.min(initial=0) < 0:
        raise ValueError("the statistics sum is not a sum of limbs")
    limbs = [int(q) for q in ints.tolist()]
    half = _MODULUS >> 1
    out = []
    for i in range(v.size // LIMBS):
        word = sum(limbs[i * LIMBS + j] << (j * LIMB_BITS) for j in range(LIMBS)) % _MODULUS
        out.append(word - _MODULUS if word >= half else word)
    return out


def stats_round_violation(ann: RoundAnnouncement) -> str | None:
    """Why ``ann`` is not a well-formed statistics round (None when it is): round 0, no DP policy (nothing is
    trained), every coordinate sent, no noise share, the step-1 grid of ``LIMB_BITS`` bits, whole moments."""
    if ann.round_id != STATS_ROUND:
        return f"round {ann.round_id} is not the statistics round {STATS_ROUND}"
    if ann.HasField("dp_policy"):
        return "the statistics round trains nothing and announces no DP policy"
    if ann.mask_k != ann.num_params or ann.noise_std != 0:
        return "the statistics round sends every coordinate and no noise share"
    if ann.quant_bits != LIMB_BITS or ann.quant_range != STATS_QUANT_RANGE:
        return f"the statistics round quantises on the step-1 grid of {LIMB_BITS} bits"
    if ann.num_params % LIMBS or (ann.num_params // LIMBS) % 2 != 1 or ann.num_params < 3 * LIMBS:
        return f"the statistics round carries (2 d + 1) moments of {LIMBS} limbs"
    return None


_PREFIX = "standardiser."


def standardiser_metrics(mean: ArrayLike, std: ArrayLike, *, rows: float, hospitals: int) -> dict[str, float]:
    """The federation's standardiser as the ``metrics`` of the model version the statistics round yields:
    ``standardiser.mean.<i>``, ``standardiser.std.<i>``, ``standardiser.rows`` and ``standardiser.hospitals``."""
    mu, sd = np.asarray(mean, dtype=np.float64), np.asarray(std, dtype=np.float64)
    out = {f"{_PREFIX}mean.{i}": float(v) for i, v in enumerate(mu)}
    out |= {f"{_PREFIX}std.{i}": float(v) for i, v in enumerate(sd)}
    out[f"{_PREFIX}rows"] = float(rows)
    out[f"{_PREFIX}hospitals"] = float(hospitals)
    return out


def standardiser_from_metrics(
    metrics: Mapping[str, float],
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """(mean, std) from :func:`standardiser_metrics` (None when ``metrics`` carries no standardiser);
    ``ValueError`` when it carries a broken one."""
    d = sum(1 for k in metrics if k.startswith(f"{_PREFIX}mean."))
    if d == 0:
        return None
    try:
        mean = np.array([metrics[f"{_PREFIX}mean.{i}"] for i in range(d)], dtype=np.float64)
        std = np.array([metrics[f"{_PREFIX}std.{i}"] for i in range(d)], dtype=np.float64)
    except KeyError as exc:
        raise ValueError(f"the standardiser lacks {exc.args[0]}") from None
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
        raise ValueError("the standardiser needs finite means and positive standard deviations")
    return mean, std
