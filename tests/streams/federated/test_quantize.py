"""Clipping and unbiased stochastic quantisation."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.federated import QuantSpec, clip_by_l2, dequantize, dequantize_sum, stochastic_quantize

DETERMINISTIC = settings(derandomize=True, max_examples=60, deadline=None)


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(1, 100), clip=st.floats(0.01, 100))
def test_clip_by_l2(seed: int, dim: int, clip: float) -> None:
    vec = np.random.default_rng(seed).normal(scale=10, size=dim)
    out = clip_by_l2(vec, clip)
    norm = np.linalg.norm(vec)
    assert np.linalg.norm(out) <= clip * (1 + 1e-12)
    if norm <= clip:
        np.testing.assert_array_equal(out, vec)
    else:
        np.testing.assert_allclose(out * (norm / clip), vec)  # same direction


@DETERMINISTIC
@given(
    seed=st.integers(0, 2**32 - 1),
    bits=st.integers(1, 32),
    rng_range=st.floats(1e-3, 1e3),
    dim=st.integers(0, 200),
)
def test_quantize_range_and_error(seed: int, bits: int, rng_range: float, dim: int) -> None:
    spec = QuantSpec(bits=bits, range=rng_range)
    gen = np.random.default_rng(seed)
    x = gen.uniform(-rng_range, rng_range, size=dim)
    q = stochastic_quantize(x, spec, gen)
    assert q.dtype == np.int64
    assert np.all((q >= 0) & (q <= spec.levels))
    assert np.all(np.abs(dequantize(q, spec) - x) <= spec.step * (1 + 1e-9))
    first = stochastic_quantize(x, spec, np.random.default_rng(seed))
    np.testing.assert_array_equal(stochastic_quantize(x, spec, np.random.default_rng(seed)), first)


def test_quantize_endpoints_are_exact() -> None:
    spec = QuantSpec(bits=8, range=2.0)
    q = stochastic_quantize(np.array([-2.0, 2.0, -5.0, 5.0]), spec, np.random.default_rng(0))
    assert q.tolist() == [0, 255, 0, 255]  # out-of-range values clamp


def test_stochastic_rounding_is_unbiased() -> None:
    spec = QuantSpec(bits=3, range=1.0)  # coarse grid: rounding noise is large
    rng = np.random.default_rng(20240601)
    x = rng.uniform(-1.0, 1.0, size=64)
    x[:4] = [-1.0, 1.0, 0.0, -1.0 + spec.step]  # grid points / ends
    reps = 20_000
    q = stochastic_quantize(np.broadcast_to(x, (reps, x.size)), spec, rng)
    mean = dequantize(q, spec).mean(axis=0)
    # A single draw is x rounded down or up: variance step^2 * f * (1 - f), f the fractional position.
    frac = (np.clip(x, -1, 1) + 1) / spec.step
    frac -= np.floor(frac)
    std_err = spec.step * np.sqrt(frac * (1 - frac) / reps)
    z = statistics.NormalDist().inv_cdf(1 - 1e-6 / (2 * x.size))  # two-sided, Bonferroni over coordinates
    tol = z * std_err + 1e-12  # grid points have zero variance and must be exact
    assert np.all(np.abs(mean - x) <= tol), np.max(np.abs(mean - x) / tol)


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), bits=st.integers(1, 24), n=st.integers(1, 50))
def test_dequantize_sum_undoes_offset(seed: int, bits: int, n: int) -> None:
    spec = QuantSpec(bits=bits, range=3.5)
    gen = np.random.default_rng(seed)
    qs = gen.integers(0, spec.levels + 1, size=(n, 30))
    expected = sum(dequantize(q, spec) for q in qs)
    np.testing.assert_allclose(dequantize_sum(qs.sum(axis=0), spec, n), expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kwargs", [{"bits": 0, "range": 1.0}, {"bits": 33, "range": 1.0}, {"bits": 8, "range": 0.0}])
def test_quant_spec_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        QuantSpec(**kwargs)  # type: ignore[arg-type]
