"""``medkiosk autoscaler``: telemetry and lag in, forecasts and decisions out, through every actuator.

Each ``step_s``: close the series buckets, forecast each target, run the policy, log one line per
action, and hand the decision to the actuators (signed commands for kiosks and groups, the scale
subresource for Deployments when a cluster is configured, and the board the KEDA scaler serves).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cloud_workers.autoscaler._board import ScalingBoard, TargetStatus
from cloud_workers.autoscaler._command_actuator import CommandActuator
from cloud_workers.autoscaler._forecast import Forecaster
from cloud_workers.autoscaler._forecasters import live_forecast
from cloud_workers.autoscaler._lag import LagPoller
from cloud_workers.autoscaler._metrics import AutoscalerMetrics
from cloud_workers.autoscaler._model_updates import ModelUpdater
from cloud_workers.autoscaler._policy import Action, Decision, PolicyConfig, PolicyState, decide, decision_log_line
from cloud_workers.autoscaler._settings import AutoscalerConfig, DeploymentTarget
from cloud_workers.autoscaler._signals import SeriesBuilder, telemetry_samples
from schemas import Chunk, ModelVersion, Telemetry
from streams import (
    FL_MODELS,
    KIOSK_TELEMETRY,
    BusMetrics,
    BusSettings,
    ConsumerConfig,
    EnvelopeConsumer,
    Keyring,
    VerifiedEvent,
)

__all__ = ["AutoscalerService"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class _Target:
    policy: PolicyConfig
    state: PolicyState
    deployment: DeploymentTarget | None = None


@dataclass(kw_only=True)
class _Counters:
    decisions: int = 0
    actions: list[dict[str, Any]] = field(default_factory=list)
    telemetry: int = 0
    errors: int = 0


class AutoscalerService:
    """The running autoscaler; ``start``, ``run(stop)``, ``stop``; ``stats()`` for the stats file."""

    def __init__(
        self,
        cfg: AutoscalerConfig,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        forecaster: Forecaster,
    ) -> None:
        self.cfg = cfg
        self.forecaster = forecaster
        self.series = SeriesBuilder(cfg.series)
        self.board = ScalingBoard(stale_after_s=max(60.0, 6 * cfg.series.step_s))
        self._targets: dict[str, _Target] = {}
        self._counters = _Counters()
        self._pending_status: list[TargetStatus] = []
        self.metrics = AutoscalerMetrics(metrics.registry)
        self.updater = (
            ModelUpdater(
                allowed_producers=cfg.model_producers,
                keyring=keyring,
                current_version=int(getattr(forecaster, "version", 0)),
            )
            if cfg.forecaster == "lstm"
            else None
        )
        topics = [KIOSK_TELEMETRY.name] + ([FL_MODELS.name] if self.updater is not None else [])
        self.consumer = EnvelopeConsumer(
            ConsumerConfig(
                topics=topics,
                group_id=cfg.group_id,
                worker=cfg.service_id,
                auto_offset_reset="latest",
            ),
            settings,
            keyring,
            metrics,
            self._on_event,
        )
        self.commands = (
            CommandActuator(
                producer_id=cfg.service_id,
                settings=settings,
                keyring=keyring,
                outbox_path=settings.state_dir / cfg.service_id / "outbox.db",
                metrics=metrics,
                knobs=None,
            )
            if cfg.send_commands
            else None
        )
        self.lag = LagPoller(settings, cfg.deployments) if cfg.deployments else None
        self.kube: Any = None
        self.keda: Any = None
        for d in cfg.deployments:
            policy = PolicyConfig(
                threshold=cfg.kiosk_policy.threshold,
                target=cfg.kiosk_policy.target,
                scale_in_target=cfg.kiosk_policy.scale_in_target,
                min_replicas=d.min_replicas,
                max_replicas=d.max_replicas,
            )
            self._targets[d.name] = _Target(policy=policy, state=PolicyState(replicas=d.min_replicas), deployment=d)

    async def _on_event(self, event: VerifiedEvent) -> None:
        if isinstance(event.message, (Chunk, ModelVersion)):
            if self.updater is not None:
                new = self.updater.handle(event)  # EnvelopeRejected goes to the DLQ with its reason
                if new is not None:
                    log.info("forecaster updated from the bus: %s -> %s", self.model_version, new.model_version)
                    self.forecaster = new
                    self.metrics.model_updates.inc()
            return
        if not isinstance(event.message, Telemetry):
            return
        self._counters.telemetry += 1
        now = time.time()
        for sample in telemetry_samples(event.message, self.cfg.groups):
            if sample.target.startswith("group:") or self.cfg.scale_kiosks:
                self.series.add(sample, now)

    async def start(self) -> None:
        if self.cfg.kube is not None:
            from cloud_workers.autoscaler._kube import KubernetesScaleActuator

            self.kube = KubernetesScaleActuator(self.cfg.kube)
        if self.cfg.keda_port is not None:
            from cloud_workers.autoscaler._keda import KedaScalerConfig, KedaScalerServer

            self.keda = KedaScalerServer(self.board, KedaScalerConfig(host=self.cfg.keda_host, port=self.cfg.keda_port))
            await self.keda.start()
        if self.commands is not None:
            await self.commands.start()
        if self.lag is not None:
            await self.lag.start()
        await self.consumer.start()

    async def run(self, stop: asyncio.Event) -> None:
        consume = asyncio.create_task(self.consumer.run())
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.cfg.series.step_s)
                if consume.done():
                    consume.result()  # a crashed consumer fails the service loudly
                await self.tick(time.time())
        finally:
            self.consumer.request_stop()
            await consume

    async def tick(self, now: float) -> list[Decision]:
        """One round: new lag samples, close buckets, decide per target, actuate."""
        if self.lag is not None:
            replicas = {n: t.state.replicas for n, t in self._targets.items() if t.deployment}
            for sample in await self.lag.poll(now, replicas):
                self.series.add(sample, now)
        self.series.close(now)
        decisions = []
        for name in self.series.targets():
            decision = self._decide(name, now)
            if decision is not None:
                decisions.append(decision)
        await self._actuate([d for d in decisions if d.action is not Action.HOLD])
        return decisions

    def _target(self, name: str) -> _Target:
        if name not in self._targets:
            self._targets[name] = _Target(
                policy=self.cfg.kiosk_policy, state=PolicyState(replicas=self.cfg.kiosk_initial_replicas)
            )
        return self._targets[name]

    def _decide(self, name: str, now: float) -> Decision | None:
        points = self.series.points(name)
        if not points or points[-1].sources == 0:
            return None
        target = self._target(name)
        last = points[-1]
        rates = np.array([p.rate for p in points], dtype=np.float64)
        predicted = math.nan
        if len(points) >= self.cfg.min_history and last.load > 0 and last.rate > 0:
            fc = live_forecast(self.forecaster, rates, first_bucket=points[0].bucket)
            q = self.forecaster.quantiles
            col = q.index(self.cfg.quantile) if self.cfg.quantile in q else len(q) - 1
            capacity = last.rate / last.load  # at the replicas the target runs now
            predicted = float(np.max(fc[:, col])) / capacity
        elif last.load == 0 or last.rate == 0:
            predicted = 0.0
        decision, target.state = decide(
            target.state,
            target=name,
            observed_load=last.load,
            predicted_load=predicted,
            now_s=now,
            cfg=target.policy,
        )
        self._counters.decisions += 1
        self.metrics.record(decision)
        model_version = self.model_version
        status = TargetStatus(
            target=name,
            replicas=decision.replicas_to,
            observed_load=decision.observed_load,
            predicted_load=decision.predicted_load,
            model_version=model_version,
            updated_at=now,
        )
        self._pending_status.append(status)
        return decision

    async def _actuate(self, actions: list[Decision]) -> None:
        statuses, self._pending_status = self._pending_status, []
        for s in statuses:
            await self.board.publish(s)
        for d in actions:
            log.info(decision_log_line(d))
            self._counters.actions.append(
                {"target": d.target, "action": d.action.value, "from": d.replicas_from, "to": d.replicas_to}
            )
        kiosk_side = [d for d in actions if not self._is_deployment(d.target)]
        if self.commands is not None and kiosk_side:
            self.commands.send(kiosk_side)
        if self.kube is not None:
            for d in actions:
                if self._is_deployment(d.target):
                    try:
                        dep = self._targets[d.target].deployment
                        await self.kube.scale(d.target, d.replicas_to, dep.kind if dep else "Deployment")
                    except Exception as exc:  # the API server refusing must not stop the loop
                        self._counters.errors += 1
                        log.warning("scaling %s failed: %s", d.target, exc)

    @property
    def model_version(self) -> str:
        return str(getattr(self.forecaster, "model_version", "") or self.forecaster.name)

    def _is_deployment(self, name: str) -> bool:
        t = self._targets.get(name)
        return t is not None and t.deployment is not None

    async def stop(self) -> None:
        await self.consumer.stop()
        if self.commands is not None:
            await self.commands.drain(10.0)
            await self.commands.stop()
        if self.lag is not None:
            await self.lag.stop()
        if self.keda is not None:
            await self.keda.stop()
        if self.kube is not None:
            self.kube.close()

    def stats(self) -> dict[str, Any]:
        c = self._counters
        return {
            "ready": self.consumer.assigned.is_set(),
            "telemetry": c.telemetry,
            "decisions": c.decisions,
            "scaling_actions": len(c.actions),
            "actions": c.actions[-50:],
            "commands_sent": len(self.commands.sent) if self.commands else 0,
            "targets": self.series.targets(),
            "late_dropped": self.series.late_dropped,
            "errors": c.errors,
            "model": self.model_version,
            "model_updates": self.updater.installed if self.updater else 0,
            "model_refused": self.updater.refused if self.updater else 0,
            "keda_port": self.keda.port if self.keda is not None else None,
        }
