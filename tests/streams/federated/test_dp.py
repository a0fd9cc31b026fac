"""DP accounting agrees with opacus's RDP accountant."""

from __future__ import annotations

import math

import pytest
from opacus.accountants import RDPAccountant

from streams.federated import (
    OPACUS_DEFAULT_ORDERS,
    distributed_noise_std,
    epsilon_for,
    gaussian_mechanism_sigma,
    noise_multiplier_for,
)

CASES = [
    # (noise_multiplier, sample_rate, steps, delta): opacus's optimum order lies inside its defaults
    (1.1, 0.1, 100, 1e-5),
    (0.8, 0.5, 20, 1e-5),
    (2.0, 1.0, 50, 1e-6),
    (1.0, 0.02, 1000, 1e-5),
]


def test_default_orders_are_opacus_defaults() -> None:
    assert list(OPACUS_DEFAULT_ORDERS) == RDPAccountant.DEFAULT_ALPHAS


@pytest.mark.parametrize(("sigma", "q", "steps", "delta"), CASES)
def test_epsilon_matches_stepping_opacus_accountant(sigma: float, q: float, steps: int, delta: float) -> None:
    accountant = RDPAccountant()
    for _ in range(steps):
        accountant.step(noise_multiplier=sigma, sample_rate=q)
    expected = accountant.get_epsilon(delta=delta)
    assert epsilon_for(sigma, q, steps, delta) == pytest.approx(expected, rel=1e-12)
    assert epsilon_for(sigma, q, steps, delta, orders=OPACUS_DEFAULT_ORDERS) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("target", "q", "steps", "delta"), [(3.0, 0.1, 100, 1e-5), (1.0, 1.0, 10, 1e-5)])
def test_noise_multiplier_reaches_target(target: float, q: float, steps: int, delta: float) -> None:
    sigma = noise_multiplier_for(target, delta, q, steps)
    eps = epsilon_for(sigma, q, steps, delta)
    assert eps <= target
    assert eps >= target - 0.05  # opacus's search stops within 0.01 of the target in epsilon
    assert epsilon_for(sigma * 0.9, q, steps, delta) > eps  # less noise, more epsilon


def test_gaussian_mechanism_sigma() -> None:
    eps, delta = 0.5, 1e-5
    sigma = gaussian_mechanism_sigma(eps, delta, 1.0)
    assert gaussian_mechanism_sigma(eps, delta, 3.0) == pytest.approx(3 * sigma)
    assert epsilon_for(sigma, 1.0, 1, delta) <= eps
    classic = math.sqrt(2 * math.log(1.25 / delta)) / eps  # Dwork-Roth, valid for eps < 1
    assert sigma <= classic


def test_distributed_noise_shares_sum_to_central_noise() -> None:
    share = distributed_noise_std(1.2, 0.5, 9)
    assert math.sqrt(9 * share**2) == pytest.approx(1.2 * 0.5)


@pytest.mark.parametrize("args", [(0.0, 0.1, 10, 1e-5), (1.0, 0.0, 10, 1e-5), (1.0, 0.1, 0, 1e-5), (1.0, 0.1, 10, 1.0)])
def test_epsilon_for_validates(args: tuple[float, float, int, float]) -> None:
    with pytest.raises(ValueError):
        epsilon_for(*args)
