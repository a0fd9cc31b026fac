"""Predictive autoscaling: signals from the bus, an LSTM forecaster with baselines, a pure policy and
three actuators (signed ScalingCommands, a KEDA external scaler, the Kubernetes scale subresource).

PyTorch is imported only by the LSTM pieces (``LstmConfig``, ``LstmForecaster``), loaded on first use.
"""

from __future__ import annotations

from typing import Any

from cloud_workers.autoscaler._checkpoint import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    checkpoint_versions,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from cloud_workers.autoscaler._evaluate import Evaluation, evaluate
from cloud_workers.autoscaler._forecast import (
    ExponentialSmoothing,
    Forecast,
    Forecaster,
    LastValue,
    SeasonalNaive,
    forecast_at,
    mae,
)
from cloud_workers.autoscaler._policy import Action, Decision, PolicyConfig, PolicyState, decide, decision_log_line
from cloud_workers.autoscaler._sim_scalers import ForecastScaler, HpaScaler, KedaLagScaler
from cloud_workers.autoscaler._simulator import SimConfig, SimResult, SimView, simulate
from cloud_workers.autoscaler._trace import Trace, bundled_trace_path, load_trace
from cloud_workers.autoscaler._train import TrainOptions, train_from_trace

__all__ = [
    "CHECKPOINT_FORMAT",
    "Action",
    "CheckpointError",
    "Decision",
    "Evaluation",
    "ExponentialSmoothing",
    "Forecast",
    "ForecastScaler",
    "Forecaster",
    "HpaScaler",
    "KedaLagScaler",
    "LastValue",
    "LstmConfig",
    "LstmForecaster",
    "PolicyConfig",
    "PolicyState",
    "SeasonalNaive",
    "SimConfig",
    "SimResult",
    "SimView",
    "Trace",
    "TrainOptions",
    "bundled_trace_path",
    "checkpoint_versions",
    "decide",
    "decision_log_line",
    "evaluate",
    "forecast_at",
    "latest_checkpoint",
    "load_checkpoint",
    "load_trace",
    "mae",
    "save_checkpoint",
    "simulate",
    "train_from_trace",
]

_LAZY = {"LstmConfig", "LstmForecaster"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from cloud_workers.autoscaler import _lstm

        return getattr(_lstm, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
