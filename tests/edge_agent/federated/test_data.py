"""The breast-cancer split and the seeded Dirichlet non-IID split across hospitals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.federated import (
    HospitalData,
    describe_split,
    dirichlet_split,
    label_skew,
    load_breast_cancer_split,
    load_federated_breast_cancer,
    split_counts,
)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    train, _ = load_breast_cancer_split(0)
    return train.y


def test_breast_cancer_split_is_stratified_and_standardised_on_train() -> None:
    train, test = load_breast_cancer_split(3)
    assert train.X.shape == (455, 30) and test.X.shape == (114, 30)
    assert train.n_features == 30 and train.n + test.n == 569
    assert abs(train.y.mean() - test.y.mean()) < 0.01  # stratified: same class balance
    np.testing.assert_allclose(train.X.mean(axis=0), 0.0, atol=1e-9)
    np.testing.assert_allclose(train.X.std(axis=0), 1.0, atol=1e-9)
    assert not np.allclose(test.X.mean(axis=0), 0.0, atol=1e-3)  # test rows use the train statistics
    again, _ = load_breast_cancer_split(3)
    np.testing.assert_array_equal(again.X, train.X)


def test_split_is_deterministic_for_a_seed(labels: np.ndarray) -> None:
    a = dirichlet_split(labels, 5, 0.5, np.random.default_rng(7), 10)
    b = dirichlet_split(labels, 5, 0.5, np.random.default_rng(7), 10)
    c = dirichlet_split(labels, 5, 0.5, np.random.default_rng(8), 10)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(10, 300),
    n_clients=st.integers(1, 8),
    alpha=st.floats(0.05, 100.0),
    min_frac=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_covers_every_row_once_and_respects_min(
    n: int, n_clients: int, alpha: float, min_frac: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n)
    min_per_client = int(min_frac * (n // n_clients))
    parts = dirichlet_split(y, n_clients, alpha, rng, min_per_client)
    assert len(parts) == n_clients
    joined = np.concatenate(parts)
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))
    assert min(p.size for p in parts) >= min_per_client
    assert all(np.all(np.diff(p) > 0) for p in parts)


def test_min_per_client_is_met_by_repair_when_draws_are_too_skewed(labels: np.ndarray) -> None:
    parts = dirichlet_split(labels, 6, 0.01, np.random.default_rng(0), 60, max_tries=1)
    assert min(p.size for p in parts) >= 60
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(labels.size))


def test_label_skew_grows_as_alpha_shrinks(labels: np.ndarray) -> None:
    def mean_skew(alpha: float) -> float:
        return float(
            np.mean(
                [label_skew(dirichlet_split(labels, 5, alpha, np.random.default_rng(s), 5), labels) for s in range(20)]
            )
        )

    skews = [mean_skew(a) for a in (100.0, 1.0, 0.1)]
    assert skews[0] < skews[1] < skews[2]
    assert skews[0] < 0.05 and skews[2] > 0.25


def test_counts_and_description(labels: np.ndarray) -> None:
    parts = dirichlet_split(labels, 4, 0.5, np.random.default_rng(1), 10)
    counts = split_counts(parts, labels)
    assert counts.shape == (4, 2)
    np.testing.assert_array_equal(counts.sum(axis=0), np.bincount(labels))
    np.testing.assert_array_equal(counts.sum(axis=1), [p.size for p in parts])
    text = describe_split(parts, labels)
    assert "y=0" in text and "label skew" in text and len(text.splitlines()) == 6


def test_invalid_arguments(labels: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="alpha"):
        dirichlet_split(labels, 3, 0.0, rng)
    with pytest.raises(ValueError, match="cannot give"):
        dirichlet_split(labels, 5, 1.0, rng, min_per_client=100)
    with pytest.raises(ValueError, match="binary"):
        HospitalData(np.zeros((2, 3)), np.array([0, 2]))
    with pytest.raises(ValueError, match="must be"):
        HospitalData(np.zeros((2, 3)), np.array([0, 1, 1]))


def test_federated_split_shares_the_test_rows_of_the_plain_split() -> None:
    fs = load_federated_breast_cancer(5, alpha=0.5, seed=2, min_per_client=20)
    _, test = load_breast_cancer_split(2)
    np.testing.assert_array_equal(fs.test.X, test.X)
    assert len(fs.hospitals) == 5 and sum(h.n for h in fs.hospitals) == fs.train.n
    assert min(h.n for h in fs.hospitals) >= 20
    for part, hospital in zip(fs.parts, fs.hospitals, strict=True):
        np.testing.assert_array_equal(hospital.y, fs.train.y[part])


def test_per_hospital_standardisation_uses_no_statistic_across_hospitals() -> None:
    fs = load_federated_breast_cancer(
        5, alpha=0.5, seed=2, min_per_client=20, standardise="per-hospital", validation_fraction=0.2
    )
    for h, v in zip(fs.hospitals, fs.validation, strict=True):
        np.testing.assert_allclose(h.X.mean(axis=0), 0.0, atol=1e-9)  # its own mean and std, nobody else's
        np.testing.assert_allclose(h.X.std(axis=0)[h.X.std(axis=0) > 0], 1.0, atol=1e-9)
        assert v.n >= 1 and v.n + h.n >= 20
    np.testing.assert_allclose(fs.test.X.mean(axis=0), 0.0, atol=1e-9)  # the test site: its own statistics
    assert sum(h.n + v.n for h, v in zip(fs.hospitals, fs.validation, strict=True)) == fs.train.n
    with pytest.raises(ValueError, match="standardise"):
        load_federated_breast_cancer(2, alpha=0.5, seed=0, standardise="global")
