"""Compare forecasters and autoscalers on held-out days of a trace (what ``benchmarks/autoscale.py`` runs).

Honest protocol: forecasters fit on the training days only; each forecast policy's two knobs (the
quantile it sizes on and its target load) are chosen on validation days that follow the training days,
as the cheapest setting whose SLO violations are lowest without more replica-minutes than the reactive
HPA on those same days; then every policy runs once on the test days.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cloud_workers.autoscaler._forecast import Forecaster
from cloud_workers.autoscaler._policy import PolicyConfig
from cloud_workers.autoscaler._sim_scalers import ForecastScaler, HpaScaler, KedaLagScaler
from cloud_workers.autoscaler._simulator import SimConfig, SimResult, simulate

__all__ = ["Evaluation", "evaluate"]

Array = npt.NDArray[np.float64]

#: (quantile, target, scale-in gap, scale-in cooldown) settings tried on the validation days.
GRID: tuple[tuple[float, float, float, float], ...] = tuple(
    (q, t, g, c) for q in (0.5, 0.9) for t in (0.7, 0.75, 0.8) for g in (0.0, 0.05, 0.1) for c in (60.0, 120.0, 300.0)
)


@dataclass(kw_only=True)
class Evaluation:
    mae: dict[str, dict[str, float]]
    results: dict[str, SimResult]
    chosen: dict[str, dict[str, float]]
    forecasts: dict[str, Array] = field(repr=False)


def _initial(counts: Array, sim: SimConfig) -> int:
    return max(sim.min_replicas, math.ceil(float(counts[0]) / sim.bucket_s / (sim.capacity * sim.target_util)))


def _policy(sim: SimConfig, target: float, gap: float, cooldown_s: float) -> PolicyConfig:
    return PolicyConfig(
        threshold=sim.target_util,
        target=min(target, sim.target_util),
        scale_in_target=min(target, sim.target_util) - gap,
        min_replicas=sim.min_replicas,
        max_replicas=sim.max_replicas,
        scale_in_cooldown_s=cooldown_s,
    )


def _forecasts(f: Forecaster, series: Array, start: int, stop: int) -> Array:
    ext = np.concatenate([series, np.repeat(series[-1:], f.horizon)])
    return f.predict_batch(ext, np.arange(start, stop, dtype=np.int64))


def _run(
    f: Forecaster, fc: Array, counts: Array, sim: SimConfig, setting: tuple[float, float, float, float]
) -> SimResult:
    q, target, gap, cooldown_s = setting
    scaler = ForecastScaler(
        name=f.name,
        forecasts=fc,
        quantile_index=f.quantiles.index(q),
        sim=sim,
        policy=_policy(sim, target, gap, cooldown_s),
    )
    return simulate(counts, scaler, sim, initial=_initial(counts, sim))


def evaluate(
    series: Array, forecasters: list[Forecaster], sim: SimConfig, *, train_end: int, val_end: int
) -> Evaluation:
    """Fit on ``series[:train_end]``, tune on ``[train_end:val_end]``, test on ``[val_end:]``."""
    train, val, test = series[:train_end], series[train_end:val_end], series[val_end:]
    hpa_val = simulate(val, HpaScaler(sim=sim), sim, initial=_initial(val, sim))
    results: dict[str, SimResult] = {}
    mae: dict[str, dict[str, float]] = {}
    chosen: dict[str, dict[str, float]] = {}
    forecasts: dict[str, Array] = {}
    for f in forecasters:
        f.fit(train)
        fc_val = _forecasts(f, series[:val_end], train_end, val_end)
        fc_test = _forecasts(f, series, val_end, len(series))
        forecasts[f.name] = fc_test
        median = f.quantiles.index(0.5) if 0.5 in f.quantiles else 0
        mae[f.name] = {
            f"h{k + 1}": float(np.mean(np.abs(fc_test[: len(test) - k, k, median] - test[k:])))
            for k in range(f.horizon)
        }
        best: tuple[tuple[float, float], tuple[float, float, float, float]] | None = None
        for setting in GRID:
            if setting[0] not in f.quantiles:
                continue
            r = _run(f, fc_val, val, sim, setting)
            fits = r.replica_minutes <= hpa_val.replica_minutes
            key = (0.0 if fits else 1.0, r.slo_violation_minutes if fits else r.replica_minutes)
            if best is None or key < best[0]:
                best = (key, setting)
        assert best is not None
        setting = best[1]
        chosen[f.name] = {
            "quantile": setting[0],
            "target": setting[1],
            "scale_in_target": round(setting[1] - setting[2], 3),
            "scale_in_cooldown_s": setting[3],
        }
        results[f.name] = _run(f, fc_test, test, sim, setting)
    for reactive in (HpaScaler(sim=sim), KedaLagScaler(sim=sim)):
        results[reactive.name] = simulate(test, reactive, sim, initial=_initial(test, sim))
    return Evaluation(mae=mae, results=results, chosen=chosen, forecasts=forecasts)
