"""The autoscaler's Prometheus metrics, on the process's injected registry (never the global one)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from cloud_workers.autoscaler._policy import Action, Decision

__all__ = ["AutoscalerMetrics"]


class AutoscalerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["target"]
        self.predicted = Gauge(
            "medkiosk_autoscaler_predicted_load",
            "Upper-quantile predicted load at current replicas",
            labels,
            registry=registry,
        )
        self.observed = Gauge("medkiosk_autoscaler_observed_load", "Observed load", labels, registry=registry)
        self.desired = Gauge(
            "medkiosk_autoscaler_desired_replicas", "Replicas the policy wants", labels, registry=registry
        )
        self.actions = Counter(
            "medkiosk_autoscaler_actions", "Scaling actions taken", ["target", "action"], registry=registry
        )
        self.model_updates = Counter(
            "medkiosk_autoscaler_model_updates", "Forecaster versions installed from the bus", registry=registry
        )

    def record(self, d: Decision) -> None:
        self.predicted.labels(d.target).set(d.predicted_load)
        self.observed.labels(d.target).set(d.observed_load)
        self.desired.labels(d.target).set(d.replicas_to)
        if d.action is not Action.HOLD:
            self.actions.labels(d.target, d.action.value).inc()
