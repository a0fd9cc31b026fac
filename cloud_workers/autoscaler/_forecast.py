"""The forecaster interface and the baselines (last value, seasonal naive, exponential smoothing).

Every forecaster answers the same question the same way: given a regular series and forecast origins
``o`` (history is ``series[:o]``), predict ``series[o : o + horizon]`` at the requested quantiles. The
policy, the simulator and the service take any ``Forecaster``, so the LSTM and the baselines share one
code path. Pure NumPy, no Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = [
    "ExponentialSmoothing",
    "Forecast",
    "Forecaster",
    "LastValue",
    "SeasonalNaive",
    "forecast_at",
    "mae",
]

Array = npt.NDArray[np.float64]


@dataclass(frozen=True, kw_only=True)
class Forecast:
    """Predicted values for the next ``horizon`` steps, one column per quantile."""

    quantiles: tuple[float, ...]
    #: Shape ``(horizon, len(quantiles))``.
    values: Array

    def at(self, quantile: float) -> Array:
        """The forecast path at one quantile (shape ``(horizon,)``)."""
        return self.values[:, self.quantiles.index(quantile)]


class Forecaster(Protocol):
    """What the policy, the simulator and the service need from a forecaster."""

    @property
    def name(self) -> str: ...

    @property
    def horizon(self) -> int:
        """Steps ahead each forecast covers."""
        ...

    @property
    def quantiles(self) -> tuple[float, ...]: ...

    def fit(self, series: Array) -> None:
        """Learn whatever the forecaster learns from a training series."""

    def predict_batch(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        """Forecasts from each origin: shape ``(len(origins), horizon, len(quantiles))``."""
        ...


def forecast_at(forecaster: Forecaster, history: Array) -> Forecast:
    """One forecast from the end of ``history``."""
    values = forecaster.predict_batch(history, np.array([len(history)], dtype=np.int64))[0]
    return Forecast(quantiles=forecaster.quantiles, values=values)


def mae(forecaster: Forecaster, series: Array, origins: npt.NDArray[np.int64], *, step: int = 0) -> float:
    """Mean absolute error of the median (or the first quantile) ``step`` steps ahead."""
    preds = forecaster.predict_batch(series, origins)
    col = forecaster.quantiles.index(0.5) if 0.5 in forecaster.quantiles else 0
    truth = series[origins + step]
    return float(np.mean(np.abs(preds[:, step, col] - truth)))


@dataclass(kw_only=True)
class _ResidualQuantiles:
    """Turns a point forecast into quantiles with empirical residual quantiles per horizon step."""

    horizon: int
    quantiles: tuple[float, ...]
    offsets: Array = field(init=False)

    def __post_init__(self) -> None:
        self.offsets = np.zeros((self.horizon, len(self.quantiles)))

    def fit_residuals(self, truth: Array, point: Array) -> None:
        resid = truth - point  # (n, horizon)
        if resid.shape[0] == 0:
            return  # too little history to learn a spread: the quantiles stay at the point forecast
        self.offsets = np.stack([np.quantile(resid, q, axis=0) for q in self.quantiles], axis=-1)

    def spread(self, point: Array) -> Array:
        return np.maximum(point[:, :, None] + self.offsets[None, :, :], 0.0)


def _fit_origins(n: int, horizon: int, first: int) -> npt.NDArray[np.int64]:
    return np.arange(max(first, 1), n - horizon + 1, dtype=np.int64)


def _targets(series: Array, origins: npt.NDArray[np.int64], horizon: int) -> Array:
    return np.stack([series[origins + k] for k in range(horizon)], axis=1)


@dataclass(kw_only=True)
class LastValue(_ResidualQuantiles):
    """Tomorrow looks like now: the last observed value for every step ahead."""

    name: str = "last_value"

    def _point(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        return np.repeat(series[origins - 1][:, None], self.horizon, axis=1)

    def fit(self, series: Array) -> None:
        origins = _fit_origins(len(series), self.horizon, 1)
        self.fit_residuals(_targets(series, origins, self.horizon), self._point(series, origins))

    def predict_batch(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        return self.spread(self._point(series, origins))


@dataclass(kw_only=True)
class SeasonalNaive(_ResidualQuantiles):
    """The same step one season (one day) earlier."""

    season: int
    name: str = "seasonal_naive"

    def _point(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        if self.horizon > self.season:
            raise ValueError("seasonal naive needs horizon <= season")
        idx = origins[:, None] + np.arange(self.horizon)[None, :] - self.season
        # Before one full season of history, fall back to the last value.
        last = np.repeat(series[origins - 1][:, None], self.horizon, axis=1)
        return np.where(idx >= 0, series[np.maximum(idx, 0)], last)

    def fit(self, series: Array) -> None:
        origins = _fit_origins(len(series), self.horizon, self.season)
        self.fit_residuals(_targets(series, origins, self.horizon), self._point(series, origins))

    def predict_batch(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        return self.spread(self._point(series, origins))


def _levels(series: Array, alpha: float) -> Array:
    """Smoothed level after each observation (``level[t]`` has seen ``series[: t + 1]``)."""
    out = np.empty_like(series)
    level = float(series[0]) if len(series) else 0.0
    for t, y in enumerate(series):
        level += alpha * (float(y) - level)
        out[t] = level
    return out


@dataclass(kw_only=True)
class ExponentialSmoothing(_ResidualQuantiles):
    """Simple exponential smoothing; ``alpha`` is chosen on the training series by one-step error."""

    alpha: float = 0.5
    name: str = "exp_smoothing"

    def _point(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        if len(origins) == 0:
            return np.zeros((0, self.horizon))
        levels = _levels(series[: int(origins.max())], self.alpha)
        return np.repeat(levels[origins - 1][:, None], self.horizon, axis=1)

    def fit(self, series: Array) -> None:
        best = (np.inf, self.alpha)
        for alpha in np.linspace(0.05, 1.0, 20):
            levels = _levels(series, float(alpha))
            err = float(np.mean(np.abs(series[1:] - levels[:-1])))
            best = min(best, (err, float(alpha)))
        self.alpha = best[1]
        origins = _fit_origins(len(series), self.horizon, 1)
        self.fit_residuals(_targets(series, origins, self.horizon), self._point(series, origins))

    def predict_batch(self, series: Array, origins: npt.NDArray[np.int64]) -> Array:
        return self.spread(self._point(series, origins))
