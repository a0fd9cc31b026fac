"""Build the service's forecaster by name, and forecast from a live series (scale and season aligned)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from cloud_workers.autoscaler._checkpoint import latest_checkpoint, load_checkpoint
from cloud_workers.autoscaler._forecast import ExponentialSmoothing, Forecaster, LastValue, SeasonalNaive

__all__ = ["FORECASTERS", "live_forecast", "make_forecaster"]

FORECASTERS = ("lstm", "last_value", "seasonal_naive", "exp_smoothing")


def make_forecaster(name: str, *, checkpoint: Path | None, season: int = 8640, horizon: int = 2) -> Forecaster:
    """``lstm`` loads ``checkpoint`` (a file, or the newest version in a directory); baselines need nothing."""
    qs = (0.5, 0.9)
    if name == "lstm":
        if checkpoint is None:
            raise ValueError("the lstm forecaster needs --checkpoint (train one: medkiosk autoscaler train)")
        path = latest_checkpoint(checkpoint) if checkpoint.is_dir() else checkpoint
        if path is None:
            raise FileNotFoundError(f"no forecaster-v*.pt in {checkpoint}")
        return load_checkpoint(path)
    if name == "last_value":
        return LastValue(horizon=horizon, quantiles=qs)
    if name == "seasonal_naive":
        return SeasonalNaive(season=season, horizon=horizon, quantiles=qs)
    if name == "exp_smoothing":
        return ExponentialSmoothing(horizon=horizon, quantiles=qs, alpha=0.5)
    raise ValueError(f"unknown forecaster {name!r} (one of {', '.join(FORECASTERS)})")


def live_forecast(
    forecaster: Forecaster, history: npt.NDArray[np.float64], *, first_bucket: int
) -> npt.NDArray[np.float64]:
    """Forecast ``(horizon, quantiles)`` after ``history`` whose first value is bucket ``first_bucket``.

    The LSTM learned level-free shapes (inputs are divided by a scale), so it is given the live series'
    own mean as scale; its season phase is the bucket number modulo its season, so history is placed
    at that phase. Baselines need neither.
    """
    model: Any = forecaster
    if getattr(model, "net", None) is not None:
        season = int(model.cfg.season)
        pad = first_bucket % season
        series = np.concatenate([np.zeros(pad), history])
        model = replace(model, scale=max(float(np.mean(history)), 1e-6))
        out: npt.NDArray[np.float64] = model.predict_batch(series, np.array([len(series)], dtype=np.int64))[0]
        return out
    if hasattr(forecaster, "offsets") and len(history) > 2 * forecaster.horizon + 1:
        forecaster.fit(history)  # baselines re-learn their residual spread on the live series
    res: npt.NDArray[np.float64] = forecaster.predict_batch(history, np.array([len(history)], dtype=np.int64))[0]
    return res
