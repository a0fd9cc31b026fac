"""Shared masks and error feedback."""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.federated import ErrorFeedback, as_mask, random_k_mask, top_k_mask

DETERMINISTIC = settings(derandomize=True, max_examples=60, deadline=None)


@DETERMINISTIC
@given(dim=st.integers(1, 5000), frac=st.floats(0, 1), seed=st.integers(0, 2**64 - 1))
def test_random_k_mask_is_identical_for_every_client(dim: int, frac: float, seed: int) -> None:
    k = int(frac * dim)
    clients = [random_k_mask(dim, k, seed) for _ in range(3)]
    for other in clients[1:]:
        np.testing.assert_array_equal(clients[0], other)
    mask = clients[0]
    assert mask.dtype == np.int64
    assert mask.shape == (k,)
    assert np.all(np.diff(mask) > 0)  # sorted and distinct
    assert k == 0 or (mask[0] >= 0 and mask[-1] < dim)


def test_random_k_mask_depends_on_seed() -> None:
    assert not np.array_equal(random_k_mask(10_000, 100, 1), random_k_mask(10_000, 100, 2))


def test_random_k_mask_known_values_are_stable() -> None:
    # Pinned outputs: a change here means clients on different NumPy versions would disagree.
    assert random_k_mask(20, 5, 12345).tolist() == [0, 7, 10, 13, 19]
    assert random_k_mask(1_000_000, 4, 2**63 + 5).tolist() == [31780, 215279, 291923, 992234]
    assert random_k_mask(20, 20, 7).tolist() == list(range(20))


def test_random_k_mask_is_uniform() -> None:
    dim, k, seeds = 40, 8, 4000
    counts = np.zeros(dim)
    for seed in range(seeds):
        counts[random_k_mask(dim, k, seed)] += 1
    p = k / dim
    sd = (seeds * p * (1 - p)) ** 0.5
    z = statistics.NormalDist().inv_cdf(1 - 1e-6 / (2 * dim))  # Bonferroni over coordinates
    assert np.all(np.abs(counts - seeds * p) <= z * sd)


@pytest.mark.parametrize(("dim", "k"), [(5, -1), (5, 6), (-1, 0)])
def test_random_k_mask_rejects_bad_k(dim: int, k: int) -> None:
    with pytest.raises(ValueError):
        random_k_mask(dim, k, 0)


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(1, 300), frac=st.floats(0, 1))
def test_top_k_mask_picks_largest_magnitudes(seed: int, dim: int, frac: float) -> None:
    rng = np.random.default_rng(seed)
    prev = np.round(rng.normal(size=dim), 1)  # rounding creates ties
    k = int(frac * dim)
    mask = top_k_mask(prev, k)
    assert np.all(np.diff(mask) > 0)
    chosen = np.abs(prev[mask])
    rest = np.abs(np.delete(prev, mask))
    if k and rest.size:
        assert chosen.min() >= rest.max()
    np.testing.assert_array_equal(mask, top_k_mask(prev.copy(), k))


def test_top_k_mask_breaks_ties_by_lower_index() -> None:
    assert top_k_mask(np.array([1.0, -2.0, 2.0, 0.5, -2.0]), 2).tolist() == [1, 2]


@DETERMINISTIC
@given(seed=st.integers(0, 2**32 - 1), dim=st.integers(1, 200), rounds=st.integers(1, 6))
def test_error_feedback_conserves_mass(seed: int, dim: int, rounds: int) -> None:
    rng = np.random.default_rng(seed)
    ef = ErrorFeedback(dim)
    total_in = np.zeros(dim)
    total_sent = np.zeros(dim)
    for r in range(rounds):
        update = rng.normal(size=dim)
        total_in += update
        compensated = ef.compensate(update)
        np.testing.assert_allclose(compensated, update + ef.residual)
        mask = random_k_mask(dim, int(rng.integers(0, dim + 1)), seed + r)
        sent = compensated[mask] * rng.uniform(0, 1)  # e.g. clipped: only part is sent
        ef.record_sent(compensated, mask, sent)
        sent_full = np.zeros(dim)
        sent_full[mask] = sent
        np.testing.assert_allclose(sent_full + ef.residual, compensated, rtol=0, atol=1e-12)
        total_sent += sent_full
    np.testing.assert_allclose(total_sent + ef.residual, total_in, rtol=0, atol=1e-9)


def test_error_feedback_default_sends_masked_coordinates_in_full() -> None:
    ef = ErrorFeedback(4)
    comp = ef.compensate(np.array([1.0, 2.0, 3.0, 4.0]))
    ef.record_sent(comp, np.array([1, 3]))
    np.testing.assert_array_equal(ef.residual, [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(ef.compensate(np.ones(4)), [2.0, 1.0, 4.0, 1.0])


def test_as_mask_rejects_bad_masks() -> None:
    for bad in ([0, 0], [5], [-1], [0.5]):
        with pytest.raises(ValueError):
            as_mask(np.array(bad), 5)
