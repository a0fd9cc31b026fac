"""The autoscaler's part in ``medkiosk up``: its argv, and its scaling actions for the final summary.

In the demo it scales each kiosk's inference workers from the kiosks' telemetry (every 2 s), with
commands the agents verify and apply. The forecaster is exponential smoothing unless a trained LSTM
checkpoint is given (``--autoscaler-checkpoint``): a demo of seconds has no daily season to learn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["AutoscalerLaunch"]

SERVICE_ID = "autoscaler-1"


class AutoscalerLaunch:
    def __init__(self, *, step_s: float = 2.0, checkpoint: Path | None = None, keda_port: int | None = None) -> None:
        self.step_s = step_s
        self.checkpoint = checkpoint
        self.keda_port = keda_port

    def argv(self, common: list[str]) -> list[str]:
        argv = ["autoscaler", "--step", str(self.step_s), "--min-history", "3", "--max-replicas", "4"]
        argv += ["--scale-in-cooldown", "10", "--scale-out-cooldown", "6", "--producer", SERVICE_ID]
        if self.checkpoint is not None:
            argv += ["--forecaster", "lstm", "--checkpoint", str(self.checkpoint)]
        else:
            argv += ["--forecaster", "exp_smoothing"]
        if self.keda_port is not None:
            argv += ["--keda-port", str(self.keda_port)]
        return [*argv, *common]

    @staticmethod
    def summary(stats: dict[str, Any], kiosk_stats: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """What goes under ``"autoscaler"`` in the summary: actions taken, and commands the kiosks applied."""
        return {
            "model": stats.get("model", ""),
            "decisions": int(stats.get("decisions", 0)),
            "scaling_actions": int(stats.get("scaling_actions", 0)),
            "actions": stats.get("actions", []),
            "commands_sent": int(stats.get("commands_sent", 0)),
            "commands_applied": sum(int(s.get("commands_applied", 0)) for s in kiosk_stats.values()),
            "telemetry": int(stats.get("telemetry", 0)),
        }
