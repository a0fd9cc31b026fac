"""The replica simulator and the policies compared in it, on small hand-made traces."""

from __future__ import annotations

import numpy as np

from cloud_workers.autoscaler import (
    ForecastScaler,
    HpaScaler,
    KedaLagScaler,
    LastValue,
    PolicyConfig,
    SeasonalNaive,
    SimConfig,
    SimView,
    evaluate,
    simulate,
)

SIM = SimConfig(step_s=30, bucket_s=300, startup_s=90, capacity=0.1, max_replicas=30)


class Fixed:
    def __init__(self, n: int) -> None:
        self.n = n
        self.name = f"fixed{n}"

    def desired(self, view: SimView) -> int:
        return self.n


def test_enough_fixed_replicas_never_violate_and_cost_exactly_their_minutes() -> None:
    counts = np.full(12, 60.0)  # 0.2 req/s; 3 replicas serve 0.3 at 67 % utilisation
    r = simulate(counts, Fixed(3), SIM, initial=3)
    assert r.slo_violation_minutes == 0 and r.max_wait_s == 0 and r.scaling_actions == 0
    assert r.replica_minutes == 3 * 12 * 5


def test_too_few_replicas_queue_up_and_violate() -> None:
    counts = np.full(6, 60.0)  # 0.2 req/s against 0.1 served
    r = simulate(counts, Fixed(1), SIM, initial=1)
    assert r.saturated_minutes == 30 and r.wait_violation_minutes > 20 and r.max_wait_s > 300


def test_startup_delay_is_paid_and_billed() -> None:
    counts = np.full(2, 60.0)
    r = simulate(counts, Fixed(4), SIM, initial=1)
    # Asked for at the end of the first step, ready 90 s later: the first 4 steps run on one replica.
    assert r.replicas[0] == 1 and r.replicas[1] == 4
    assert r.saturated_minutes == 2.0  # steps 0-3 (30 s each) at 200 % utilisation
    assert r.scaling_actions == 1


def step_trace() -> np.ndarray:
    # Quiet, then a jump every "day" at the same slot: a forecaster that knows the season sees it coming.
    day = np.array([30.0] * 6 + [150.0] * 6)
    return np.tile(day, 10)


def test_forecasts_scale_out_before_the_jump_reactive_after() -> None:
    counts = step_trace()
    season = 12
    sn = SeasonalNaive(season=season, horizon=2, quantiles=(0.5,))
    sn.fit(counts[: 5 * season])
    test = counts[5 * season :]
    fc = sn.predict_batch(counts, np.arange(5 * season, len(counts), dtype=np.int64))
    policy = PolicyConfig(max_replicas=30, scale_in_target=0.7)
    pred = simulate(
        test, ForecastScaler(name="sn", forecasts=fc, quantile_index=0, sim=SIM, policy=policy), SIM, initial=2
    )
    hpa = simulate(test, HpaScaler(sim=SIM), SIM, initial=2)
    keda = simulate(test, KedaLagScaler(sim=SIM), SIM, initial=2)
    assert pred.saturated_minutes == 0
    assert hpa.saturated_minutes > 0 and keda.saturated_minutes > 0
    assert pred.slo_violation_minutes < 0.5 * hpa.slo_violation_minutes


def test_hpa_scale_down_waits_for_the_stabilisation_window() -> None:
    counts = np.array([150.0] * 3 + [15.0] * 4)
    r = simulate(counts, HpaScaler(sim=SIM), SIM, initial=7)
    drop = 3 * 10  # the step where the load falls
    assert r.replicas[drop + 5] == r.replicas[drop - 1]  # still held 150 s after the drop
    assert r.replicas[drop + 11] < r.replicas[drop - 1]  # released after 300 s


def test_evaluate_runs_every_policy_on_the_same_held_out_days() -> None:
    counts = step_trace()
    ev = evaluate(counts, [LastValue(horizon=2, quantiles=(0.5, 0.9))], SIM, train_end=60, val_end=84)
    assert set(ev.results) == {"last_value", "hpa_reactive", "keda_lag"}
    assert ev.forecasts["last_value"].shape == (len(counts) - 84, 2, 2)
    assert ev.mae["last_value"]["h1"] > 0
    assert ev.chosen["last_value"]["quantile"] in (0.5, 0.9)
