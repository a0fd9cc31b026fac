"""The classifier's flat parameter vector and the evaluation metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from edge_agent.federated import binary_metrics, flatten, load_flat, make_model, num_params, roc_auc


@pytest.mark.parametrize(("hidden", "expected"), [(0, 31), (16, 30 * 16 + 16 + 16 + 1)])
def test_flatten_load_flat_round_trip(hidden: int, expected: int) -> None:
    model = make_model(30, hidden, seed=1)
    assert num_params(model) == expected
    vec = np.random.default_rng(0).normal(size=expected)
    load_flat(model, vec)
    out = flatten(model)
    assert out.dtype == np.float64 and out.shape == (expected,)
    np.testing.assert_allclose(out, vec.astype(np.float32).astype(np.float64), rtol=0, atol=0)
    other = make_model(30, hidden, seed=2)
    load_flat(other, out)
    np.testing.assert_array_equal(flatten(other), out)
    for a, b in zip(model.parameters(), other.parameters(), strict=True):
        assert torch.equal(a, b)


def test_flat_order_is_named_parameters_order() -> None:
    model = make_model(4, 3, seed=0)
    expected = np.concatenate([p.detach().numpy().ravel() for _, p in model.named_parameters()])
    np.testing.assert_array_equal(flatten(model), expected.astype(np.float64))


def test_seeded_init_is_reproducible_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    a, b = flatten(make_model(30, 0, seed=5)), flatten(make_model(30, 0, seed=5))
    assert torch.equal(state, torch.get_rng_state())
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, flatten(make_model(30, 0, seed=6)))


def test_load_flat_rejects_bad_vectors() -> None:
    model = make_model(30)
    with pytest.raises(ValueError, match="31"):
        load_flat(model, np.zeros(30))
    with pytest.raises(ValueError, match="non-finite"):
        load_flat(model, np.full(31, np.nan))


def test_roc_auc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + y, 1)  # rounding creates ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert math.isnan(roc_auc(np.ones(3), np.arange(3.0)))


def test_binary_metrics_of_a_perfect_model() -> None:
    model = make_model(1)
    load_flat(model, np.array([10.0, 0.0]))
    X = np.array([[-1.0], [-2.0], [1.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    m = binary_metrics(model, X, y)
    assert m["accuracy"] == 1.0 and m["auc"] == 1.0 and m["n"] == 4.0 and m["loss"] < 1e-3
