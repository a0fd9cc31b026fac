"""The policy on its own: threshold, sizing, bounds, cooldowns, and scale-in only on agreement."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_workers.autoscaler import Action, PolicyConfig, PolicyState, decide, decision_log_line

CFG = PolicyConfig(min_replicas=2, max_replicas=10, scale_out_cooldown_s=30, scale_in_cooldown_s=120)


def run(replicas: int, observed: float, predicted: float, now: float = 1000.0, **state: float):  # type: ignore[no-untyped-def]
    return decide(
        PolicyState(replicas=replicas, **state),
        target="gateway",
        observed_load=observed,
        predicted_load=predicted,
        now_s=now,
        cfg=CFG,
    )


def test_scales_out_before_the_load_arrives_sized_under_target() -> None:
    d, s = run(4, observed=0.5, predicted=1.2)
    assert d.action is Action.SCALE_OUT
    # 4 replicas at 1.2 is 4.8 replicas of work; at <= 0.8 that needs 6.
    assert d.replicas_to == 6 == s.replicas
    assert 4 * 1.2 / d.replicas_to <= CFG.target
    assert "predicted" in d.reason


def test_at_threshold_holds_and_just_over_scales() -> None:
    assert run(4, observed=0.5, predicted=0.8)[0].action is Action.HOLD
    assert run(4, observed=0.5, predicted=0.81)[0].action is Action.SCALE_OUT


def test_a_missed_forecast_is_caught_by_the_observed_load() -> None:
    d, _ = run(4, observed=1.0, predicted=0.3)
    assert d.action is Action.SCALE_OUT and d.replicas_to == 5
    assert "observed" in d.reason


def test_never_scales_in_on_a_forecast_alone() -> None:
    d, _ = run(8, observed=0.75, predicted=0.1)
    assert d.action is Action.HOLD


def test_never_scales_in_on_observed_alone_when_a_rise_is_predicted() -> None:
    d, _ = run(8, observed=0.1, predicted=0.75)
    assert d.action is Action.HOLD


def test_scales_in_when_both_agree_and_keeps_both_under_the_scale_in_target() -> None:
    d, s = run(8, observed=0.3, predicted=0.35)
    assert d.action is Action.SCALE_IN
    assert 8 * 0.35 / d.replicas_to <= CFG.scale_in_target
    assert d.replicas_to == 5 == s.replicas and s.last_in_s == 1000.0


def test_bounds() -> None:
    assert run(9, observed=2.0, predicted=3.0)[0].replicas_to == 10
    at_max = run(10, observed=2.0, predicted=3.0)[0]
    assert at_max.action is Action.HOLD and "max_replicas" in at_max.reason
    assert run(3, observed=0.0, predicted=0.0)[0].replicas_to == 2
    assert run(1, observed=0.0, predicted=0.0)[0].replicas_to == 2  # below min: raised at once
    assert run(12, observed=0.0, predicted=0.0)[0].replicas_to == 10


def test_cooldowns() -> None:
    out = run(4, observed=0.5, predicted=1.2, now=1000, last_out_s=990)[0]
    assert out.action is Action.HOLD and out.reason == "scale-out cooldown"
    assert run(4, observed=0.5, predicted=1.2, now=1000, last_out_s=960)[0].action is Action.SCALE_OUT
    # Scale-in waits for the cooldown after any action, scale-out included.
    held = run(8, observed=0.3, predicted=0.3, now=1000, last_out_s=950)[0]
    assert held.action is Action.HOLD and held.reason == "scale-in cooldown"
    assert run(8, observed=0.3, predicted=0.3, now=1000, last_in_s=870)[0].action is Action.SCALE_IN


def test_missing_inputs() -> None:
    assert run(4, observed=math.nan, predicted=0.0)[0].action is Action.HOLD
    assert run(4, observed=math.nan, predicted=2.0)[0].action is Action.HOLD
    # A broken forecast falls back to the observed load: it may scale out, but never in.
    assert run(4, observed=1.0, predicted=math.inf)[0].action is Action.SCALE_OUT
    held = run(8, observed=0.1, predicted=math.nan)[0]
    assert held.action is Action.HOLD and "never scale in" in held.reason


def test_one_log_line_per_action() -> None:
    d, _ = run(4, observed=0.5, predicted=1.2)
    line = decision_log_line(d)
    assert "\n" not in line
    assert "target=gateway action=scale_out replicas=4->6" in line
    assert "observed_load=0.500 predicted_load=1.200" in line


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        PolicyConfig(threshold=0.7, target=0.8)
    with pytest.raises(ValueError):
        PolicyConfig(min_replicas=5, max_replicas=2)


loads = st.floats(min_value=0.0, max_value=5.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(r=st.integers(min_value=1, max_value=15), obs=loads, pred=loads, t=st.floats(0, 1e6))
def test_properties(r: int, obs: float, pred: float, t: float) -> None:
    d, s = run(r, observed=obs, predicted=pred, now=t + 1e4)
    assert CFG.min_replicas <= d.replicas_to <= CFG.max_replicas
    assert s.replicas == d.replicas_to
    if CFG.min_replicas <= r <= CFG.max_replicas:
        if d.action is Action.SCALE_IN:
            assert obs <= CFG.threshold and pred <= CFG.threshold
            assert r * max(obs, pred) / d.replicas_to <= CFG.scale_in_target + 1e-9
        if d.action is Action.SCALE_OUT:
            assert max(obs, pred) > CFG.threshold
            assert d.replicas_to == CFG.max_replicas or r * max(obs, pred) / d.replicas_to <= CFG.target + 1e-9
