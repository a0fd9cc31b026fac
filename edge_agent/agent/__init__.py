"""The kiosk agent: sensors -> fusion -> outbox, triage, commands from the cloud, telemetry."""

from edge_agent.agent._agent import EdgeAgent, LivenessObservation, LivenessSource, ModelSink, TriageBackend
from edge_agent.agent._commands import CommandPolicy, ScalingChange, authorize_command
from edge_agent.agent._config import (
    CameraConfig,
    CommandsConfig,
    FusionSettings,
    KioskConfig,
    LivenessSettings,
    RfidSettings,
    TelemetryConfig,
    TriageSettings,
    load_config,
)
from edge_agent.agent._telemetry import StageTimer, build_telemetry

__all__ = [
    "CameraConfig",
    "CommandPolicy",
    "CommandsConfig",
    "EdgeAgent",
    "FusionSettings",
    "KioskConfig",
    "LivenessObservation",
    "LivenessSettings",
    "LivenessSource",
    "ModelSink",
    "RfidSettings",
    "ScalingChange",
    "StageTimer",
    "TelemetryConfig",
    "TriageBackend",
    "TriageSettings",
    "authorize_command",
    "build_telemetry",
    "load_config",
]
