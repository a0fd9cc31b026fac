"""Kiosk actuator: each decision for a kiosk (or ``group:<name>``) becomes a signed ``ScalingCommand`` on
``control.scaling.v1``, which the kiosk agents verify (signature, allowed producer, expiry, ranges) and
apply. Commands go through a durable outbox: a broker outage delays them, never loses them.

Mapping: replicas are the kiosk's inference workers. At ``max_replicas`` and still over threshold the
kiosk is asked to batch more (``max_batch``) and to run its camera slower (``camera_fps``) so that
identity checks keep up; when it scales back in, both return to normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cloud_workers.autoscaler._policy import Action, Decision
from cloud_workers.control import scaling_command
from schemas import ScalingCommand
from streams import CONTROL_SCALING, BusMetrics, BusSettings, Keyring, Outbox, OutboxSender, SealRequest

__all__ = ["CommandActuator", "KioskKnobs", "command_for"]


@dataclass(frozen=True, kw_only=True)
class KioskKnobs:
    """What a kiosk runs at normally and when saturated at its maximum worker count."""

    normal_batch: int = 8
    saturated_batch: int = 32
    normal_fps: float = 15.0
    saturated_fps: float = 8.0
    max_workers: int = 8
    ttl_s: float = 120.0


def command_for(decision: Decision, knobs: KioskKnobs) -> ScalingCommand | None:
    """The command for one decision, ``None`` for a hold (holds send nothing)."""
    if decision.action is Action.HOLD:
        return None
    saturated = decision.replicas_to >= knobs.max_workers and decision.action is not Action.SCALE_IN
    return scaling_command(
        decision.target,
        inference_workers=min(decision.replicas_to, knobs.max_workers),
        max_batch=knobs.saturated_batch if saturated else knobs.normal_batch,
        camera_fps=knobs.saturated_fps if saturated else knobs.normal_fps,
        predicted_load=max(0.0, min(1.0, decision.predicted_load)),
        reason=f"{decision.action.value}: {decision.reason}"[:200],
        ttl_s=knobs.ttl_s,
    )


class CommandActuator:
    """Long-lived outbox + sender signing commands as ``producer_id``; ``start``/``stop``."""

    def __init__(
        self,
        *,
        producer_id: str,
        settings: BusSettings,
        keyring: Keyring,
        outbox_path: Path,
        metrics: BusMetrics,
        knobs: KioskKnobs | None = None,
    ) -> None:
        outbox_path.parent.mkdir(parents=True, exist_ok=True)
        self._outbox = Outbox(outbox_path, signing_key=keyring.signing_key(producer_id))
        self._sender = OutboxSender(self._outbox, settings, metrics, idle_s=0.2)
        self.knobs = knobs or KioskKnobs()
        self.sent: list[ScalingCommand] = []

    async def start(self) -> None:
        await self._sender.start()

    def send(self, decisions: list[Decision]) -> list[ScalingCommand]:
        """Queue the commands for these decisions (durably); the sender delivers them."""
        commands = [c for d in decisions if (c := command_for(d, self.knobs)) is not None]
        if commands:
            self._outbox.put(
                [
                    SealRequest(
                        topic=CONTROL_SCALING.name, key=c.target.encode(), message=c, hospital_id="", data_key=None
                    )
                    for c in commands
                ]
            )
            self._sender.notify()
            self.sent.extend(commands)
        return commands

    async def drain(self, timeout_s: float) -> bool:
        return await self._sender.drain(timeout_s)

    async def stop(self) -> None:
        await self._sender.stop()
        self._outbox.close()
