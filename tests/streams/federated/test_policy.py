"""The DP policy checks and the accounting anyone can redo: opacus's numbers, without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from schemas import DpPolicy, DpStep
from streams.federated import (
    RDP_ORDERS,
    dp_step_violation,
    history_epsilon,
    policy_entry,
    policy_violation,
    sum_noise_multiplier,
)

POLICY = DpPolicy(noise_multiplier=1.0, max_sample_rate=0.125, max_steps_per_round=8, max_grad_norm=0.5, delta=1e-5)


def test_history_epsilon_is_opacus_rdp_accountant() -> None:
    from opacus.accountants import RDPAccountant

    history = [(1.0, 0.125, 8), (1.0, 0.125, 8), (2.0, 0.1, 3)]
    accountant = RDPAccountant()
    accountant.history = list(history)
    assert history_epsilon(history, 1e-5) == pytest.approx(accountant.get_epsilon(1e-5, alphas=list(RDP_ORDERS)))
    assert history_epsilon([], 1e-5) == 0.0
    assert history_epsilon([policy_entry(POLICY)] * 2, 1e-5) > history_epsilon([policy_entry(POLICY)], 1e-5)


def test_the_cloud_accounts_without_importing_torch() -> None:
    code = (
        "import sys; from streams.federated import history_epsilon; "
        "assert history_epsilon([(1.0, 0.1, 5)], 1e-5) > 0; assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize(
    ("step", "why"),
    [
        ((1.0, 0.125, 8), None),
        ((1.5, 0.05, 2), None),  # more private than required
        ((0.9, 0.125, 8), "noise multiplier"),
        ((1.0, 0.2, 8), "sample rate"),
        ((1.0, 0.0, 8), "sample rate"),
        ((1.0, 0.125, 9), "steps"),
        (None, "no DP-SGD"),
    ],
)
def test_a_declared_round_is_held_against_the_policy(step: tuple[float, float, int] | None, why: str | None) -> None:
    got = dp_step_violation(POLICY, step)
    assert (got is None) if why is None else (got is not None and why in got)
    if step is not None:
        as_proto = DpStep(noise_multiplier=step[0], sample_rate=step[1], steps=step[2])
        assert dp_step_violation(POLICY, as_proto) == got


def test_policies_that_cannot_be_accounted() -> None:
    assert policy_violation(POLICY) is None
    assert policy_violation(DpPolicy(noise_multiplier=0, max_sample_rate=0.1, max_steps_per_round=1,
                                     max_grad_norm=1, delta=1e-5)) is not None  # fmt: skip
    assert policy_violation(DpPolicy(noise_multiplier=1, max_sample_rate=0.1, max_steps_per_round=1,
                                     max_grad_norm=1, delta=0)) is not None  # fmt: skip


def test_noise_on_the_sum_counts_central_noise_and_the_shares_actually_added() -> None:
    assert sum_noise_multiplier(central_noise_multiplier=0, client_noise_std=0, contributors=5, clip_norm=1) == 0
    z = sum_noise_multiplier(central_noise_multiplier=1.0, client_noise_std=0.5, contributors=4, clip_norm=2.0)
    assert z == pytest.approx((2.0**2 + 4 * 0.25) ** 0.5 / 2.0)
