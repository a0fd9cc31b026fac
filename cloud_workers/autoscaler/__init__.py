"""Predictive autoscaling: signals from the bus, an LSTM forecaster with baselines, a pure policy and
three actuators (signed ScalingCommands, a KEDA external scaler, the Kubernetes scale subresource).

Every name is imported on first use (PEP 562), so ``medkiosk --help`` and roles without the autoscaler
extra never import NumPy, PyTorch, gRPC or the Kubernetes client through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud_workers.autoscaler._board import ScalingBoard, TargetStatus
    from cloud_workers.autoscaler._checkpoint import (
        CHECKPOINT_FORMAT,
        CheckpointError,
        checkpoint_versions,
        latest_checkpoint,
        load_checkpoint,
        load_checkpoint_bytes,
        save_checkpoint,
    )
    from cloud_workers.autoscaler._command_actuator import CommandActuator, KioskKnobs, command_for
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
    from cloud_workers.autoscaler._forecasters import live_forecast, make_forecaster
    from cloud_workers.autoscaler._keda import KedaScalerConfig, KedaScalerServer
    from cloud_workers.autoscaler._kube import KubernetesScaleActuator, KubeScaleConfig, KubeScaleError
    from cloud_workers.autoscaler._lstm import LstmConfig, LstmForecaster
    from cloud_workers.autoscaler._model_updates import MODEL_NAME, ModelUpdater, model_version_message, publish_model
    from cloud_workers.autoscaler._policy import Action, Decision, PolicyConfig, PolicyState, decide, decision_log_line
    from cloud_workers.autoscaler._service import AutoscalerService
    from cloud_workers.autoscaler._settings import AutoscalerConfig, AutoscalerSettings, DeploymentTarget
    from cloud_workers.autoscaler._signals import (
        Sample,
        SeriesBuilder,
        SeriesConfig,
        TargetPoint,
        lag_sample,
        telemetry_samples,
    )
    from cloud_workers.autoscaler._sim_scalers import ForecastScaler, HpaScaler, KedaLagScaler
    from cloud_workers.autoscaler._simulator import SimConfig, SimResult, SimView, simulate
    from cloud_workers.autoscaler._trace import Trace, bundled_trace_path, load_trace
    from cloud_workers.autoscaler._train import TrainOptions, train_from_trace

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_NAME",
    "Action",
    "AutoscalerConfig",
    "AutoscalerService",
    "AutoscalerSettings",
    "CheckpointError",
    "CommandActuator",
    "Decision",
    "DeploymentTarget",
    "Evaluation",
    "ExponentialSmoothing",
    "Forecast",
    "ForecastScaler",
    "Forecaster",
    "HpaScaler",
    "KedaLagScaler",
    "KedaScalerConfig",
    "KedaScalerServer",
    "KioskKnobs",
    "KubeScaleConfig",
    "KubeScaleError",
    "KubernetesScaleActuator",
    "LastValue",
    "LstmConfig",
    "LstmForecaster",
    "ModelUpdater",
    "PolicyConfig",
    "PolicyState",
    "Sample",
    "ScalingBoard",
    "SeasonalNaive",
    "SeriesBuilder",
    "SeriesConfig",
    "SimConfig",
    "SimResult",
    "SimView",
    "TargetPoint",
    "TargetStatus",
    "Trace",
    "TrainOptions",
    "bundled_trace_path",
    "checkpoint_versions",
    "command_for",
    "decide",
    "decision_log_line",
    "evaluate",
    "forecast_at",
    "lag_sample",
    "latest_checkpoint",
    "live_forecast",
    "load_checkpoint",
    "load_checkpoint_bytes",
    "load_trace",
    "mae",
    "make_forecaster",
    "model_version_message",
    "publish_model",
    "save_checkpoint",
    "simulate",
    "telemetry_samples",
    "train_from_trace",
]

_WHERE = {
    "load_checkpoint_bytes": "_checkpoint",
    "publish_model": "_model_updates",
    "model_version_message": "_model_updates",
    "ModelUpdater": "_model_updates",
    "MODEL_NAME": "_model_updates",
    "AutoscalerService": "_service",
    "AutoscalerConfig": "_settings",
    "AutoscalerSettings": "_settings",
    "DeploymentTarget": "_settings",
    "KedaScalerConfig": "_keda",
    "KedaScalerServer": "_keda",
    "KubeScaleConfig": "_kube",
    "KubeScaleError": "_kube",
    "KubernetesScaleActuator": "_kube",
    "CommandActuator": "_command_actuator",
    "KioskKnobs": "_command_actuator",
    "command_for": "_command_actuator",
    "Sample": "_signals",
    "SeriesBuilder": "_signals",
    "SeriesConfig": "_signals",
    "TargetPoint": "_signals",
    "lag_sample": "_signals",
    "telemetry_samples": "_signals",
    "ScalingBoard": "_board",
    "TargetStatus": "_board",
    "make_forecaster": "_forecasters",
    "live_forecast": "_forecasters",
    "Action": "_policy",
    "CHECKPOINT_FORMAT": "_checkpoint",
    "CheckpointError": "_checkpoint",
    "Decision": "_policy",
    "Evaluation": "_evaluate",
    "ExponentialSmoothing": "_forecast",
    "Forecast": "_forecast",
    "ForecastScaler": "_sim_scalers",
    "Forecaster": "_forecast",
    "HpaScaler": "_sim_scalers",
    "KedaLagScaler": "_sim_scalers",
    "LastValue": "_forecast",
    "LstmConfig": "_lstm",
    "LstmForecaster": "_lstm",
    "PolicyConfig": "_policy",
    "PolicyState": "_policy",
    "SeasonalNaive": "_forecast",
    "SimConfig": "_simulator",
    "SimResult": "_simulator",
    "SimView": "_simulator",
    "Trace": "_trace",
    "TrainOptions": "_train",
    "bundled_trace_path": "_trace",
    "checkpoint_versions": "_checkpoint",
    "decide": "_policy",
    "decision_log_line": "_policy",
    "evaluate": "_evaluate",
    "forecast_at": "_forecast",
    "latest_checkpoint": "_checkpoint",
    "load_checkpoint": "_checkpoint",
    "load_trace": "_trace",
    "mae": "_forecast",
    "save_checkpoint": "_checkpoint",
    "simulate": "_simulator",
    "train_from_trace": "_train",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
