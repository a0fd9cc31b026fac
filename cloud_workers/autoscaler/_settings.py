"""``medkiosk autoscaler`` settings (``MEDKIOSK_AUTOSCALER_*``) and the plain config the service takes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from cloud_workers.autoscaler._kube import KubeScaleConfig
from cloud_workers.autoscaler._policy import PolicyConfig
from cloud_workers.autoscaler._signals import SeriesConfig

__all__ = ["AutoscalerConfig", "AutoscalerSettings", "DeploymentTarget"]


@dataclass(frozen=True, kw_only=True)
class DeploymentTarget:
    """A cloud Deployment scaled on its consumer group's input rate and lag."""

    name: str
    group_id: str
    topics: tuple[str, ...]
    #: Records per second one replica works off.
    capacity_per_replica: float
    min_replicas: int = 1
    max_replicas: int = 10
    #: A backlog counts as load until it could be worked off in this many seconds.
    drain_s: float = 60.0
    #: What ``name`` is, for the scale subresource actuator: "Deployment" or "StatefulSet".
    kind: str = "Deployment"


@dataclass(kw_only=True)
class AutoscalerConfig:
    service_id: str = "autoscaler-1"
    group_id: str = "medkiosk-autoscaler"
    series: SeriesConfig = field(default_factory=SeriesConfig)
    #: The policy for kiosk targets (replicas are inference workers).
    kiosk_policy: PolicyConfig = field(default_factory=lambda: PolicyConfig(min_replicas=1, max_replicas=8))
    #: Replicas a kiosk target is assumed to run before the first command (the agent's default).
    kiosk_initial_replicas: int = 1
    #: ``group:<name>`` targets: group name -> member kiosk ids (each kiosk is always its own target).
    groups: dict[str, list[str]] = field(default_factory=dict)
    #: Scale each kiosk, or only the groups.
    scale_kiosks: bool = True
    deployments: list[DeploymentTarget] = field(default_factory=list)
    forecaster: str = "lstm"
    checkpoint: Path | None = None
    #: Upper quantile the policy sizes on.
    quantile: float = 0.9
    #: Buckets of history before the forecaster is trusted; before that the policy is reactive.
    min_history: int = 6
    keda_port: int | None = None
    keda_host: str = "127.0.0.1"
    kube: KubeScaleConfig | None = None
    send_commands: bool = True
    #: Producers whose forecaster versions (``fl.models.v1``, model ``autoscaler-lstm``) are installed.
    model_producers: tuple[str, ...] = ("trainer-1",)


class AutoscalerSettings(BaseSettings):
    """Environment overrides, e.g. ``MEDKIOSK_AUTOSCALER_CHECKPOINT=/models`` in a container."""

    model_config = SettingsConfigDict(env_prefix="MEDKIOSK_AUTOSCALER_", extra="ignore")

    forecaster: str = "lstm"
    checkpoint: Path | None = None
    step_s: float = 10.0
    keda_port: int | None = None
    keda_host: str = "127.0.0.1"
    #: JSON: {"ward": ["kiosk-1", "kiosk-2"]}.
    groups: str = "{}"
    #: JSON list of DeploymentTarget fields.
    deployments: str = "[]"
    kube_namespace: str | None = None

    def groups_map(self) -> dict[str, list[str]]:
        data = json.loads(self.groups)
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise ValueError("MEDKIOSK_AUTOSCALER_GROUPS must be a JSON object of lists")
        return {str(k): [str(x) for x in v] for k, v in data.items()}

    def deployment_targets(self) -> list[DeploymentTarget]:
        data = json.loads(self.deployments)
        if not isinstance(data, list):
            raise ValueError("MEDKIOSK_AUTOSCALER_DEPLOYMENTS must be a JSON list")
        return [DeploymentTarget(**{**d, "topics": tuple(d.get("topics", ()))}) for d in data]
