"""Offline training: a trace CSV in, a versioned checkpoint out (``medkiosk autoscaler train``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cloud_workers.autoscaler._forecast import LastValue, SeasonalNaive
from cloud_workers.autoscaler._trace import load_trace

__all__ = ["TrainOptions", "train_from_trace"]


@dataclass(kw_only=True)
class TrainOptions:
    trace: Path
    out_dir: Path
    epochs: int = 20
    hidden: int = 32
    window: int = 36
    horizon: int = 2
    quantiles: tuple[float, ...] = (0.5, 0.9)
    #: Days at the end of the trace kept out of training and scored.
    test_days: int = 5
    seed: int = 0
    threads: int = 1
    #: Use only the last this-many days before the test days (0: all); small values train in seconds.
    max_train_days: int = 0


def train_from_trace(opts: TrainOptions) -> dict[str, Any]:
    """Train, score on the held-out days against the baselines, save; returns a JSON-able report."""
    import torch

    from cloud_workers.autoscaler._checkpoint import save_checkpoint
    from cloud_workers.autoscaler._lstm import LstmConfig, LstmForecaster

    torch.set_num_threads(opts.threads)
    trace = load_trace(opts.trace)
    s = trace.season
    train, _ = trace.split(opts.test_days)
    if opts.max_train_days:
        train = train[-opts.max_train_days * s :]
    full = np.concatenate([train, trace.values[len(trace.values) - opts.test_days * s :]])
    origins = np.arange(len(train), len(full) - opts.horizon + 1, dtype=np.int64)
    val_seasons = max(1, min(5, len(train) // s // 5))
    cfg = LstmConfig(
        season=s,
        window=opts.window,
        hidden=opts.hidden,
        horizon=opts.horizon,
        quantiles=opts.quantiles,
        epochs=opts.epochs,
        seed=opts.seed,
        val_seasons=val_seasons,
    )
    start = time.perf_counter()
    lstm = LstmForecaster(cfg=cfg)
    lstm.fit(train)
    seconds = time.perf_counter() - start
    report: dict[str, Any] = {"train_steps": len(train), "test_steps": len(full) - len(train), "seconds": seconds}
    median = opts.quantiles.index(0.5) if 0.5 in opts.quantiles else 0
    for f in (
        lstm,
        LastValue(horizon=opts.horizon, quantiles=opts.quantiles),
        SeasonalNaive(season=s, horizon=opts.horizon, quantiles=opts.quantiles),
    ):
        if f is not lstm:
            f.fit(train)
        pred = f.predict_batch(full, origins)
        report[f"mae_{f.name}"] = float(np.mean(np.abs(pred[:, 0, median] - full[origins])))
    path = save_checkpoint(
        lstm,
        opts.out_dir,
        provenance={"trace": trace.source, "trace_sha256": trace.sha256, "step_s": trace.step_s, **report},
    )
    report["checkpoint"] = str(path)
    return report
