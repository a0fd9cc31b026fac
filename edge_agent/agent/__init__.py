"""The kiosk agent: sensors -> fusion -> outbox, triage, commands from the cloud, telemetry."""

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
    "FusionSettings",
    "KioskConfig",
    "LivenessSettings",
    "RfidSettings",
    "ScalingChange",
    "StageTimer",
    "TelemetryConfig",
    "TriageSettings",
    "authorize_command",
    "build_telemetry",
    "load_config",
]
