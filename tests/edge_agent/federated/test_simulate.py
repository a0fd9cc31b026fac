"""In-memory FedAvg simulation and the centralized baseline."""

from __future__ import annotations

import numpy as np

from edge_agent.federated import FlTrainingConfig, centralized_baseline, simulate


def test_short_simulation_improves_on_the_initial_model() -> None:
    result = simulate(3, 3, FlTrainingConfig(min_per_client=40), seed=0)
    assert len(result.rounds) == 3 and len(result.history()) == 3
    assert result.final_accuracy > result.initial["accuracy"] + 0.05
    assert result.rounds[-1].loss < result.initial["loss"]
    eps = [r.epsilon for r in result.rounds]
    assert eps[0] < eps[1] < eps[2] <= 8.0
    assert result.final_epsilon == max(result.client_epsilons)
    assert result.final_params.shape == (31,)


def test_simulation_is_deterministic_for_a_seed() -> None:
    cfg = FlTrainingConfig(min_per_client=40, noise_multiplier=1.0)
    a, b = simulate(3, 2, cfg, seed=4), simulate(3, 2, cfg, seed=4)
    np.testing.assert_array_equal(a.final_params, b.final_params)


def test_codec_path_tracks_the_plain_average() -> None:
    cfg = FlTrainingConfig(min_per_client=40, noise_multiplier=1.0, key_bits=512)
    plain = simulate(3, 2, cfg, seed=1)
    coded = simulate(3, 2, cfg, seed=1, use_codec=True)
    # 16-bit stochastic quantisation over [-10, 10]: a step of 3e-4 per coordinate
    np.testing.assert_allclose(coded.final_params, plain.final_params, atol=5e-3)
    assert coded.client_epsilons == plain.client_epsilons


def test_non_private_simulation_reports_infinite_epsilon() -> None:
    result = simulate(2, 1, FlTrainingConfig(min_per_client=40), seed=0, private=False)
    assert result.final_epsilon == float("inf") and result.delta == 0.0


def test_centralized_baseline_is_a_strong_reference() -> None:
    assert centralized_baseline(0) > 0.95
