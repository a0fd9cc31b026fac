"""Publish signed scaling commands on ``control.scaling.v1`` (operators today, the autoscaler later)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from schemas import ScalingCommand
from streams import CONTROL_SCALING, BusMetrics, BusSettings, Keyring, Outbox, OutboxSender, SealRequest

__all__ = ["publish_commands", "scaling_command"]


def scaling_command(
    target: str,
    *,
    inference_workers: int = 0,
    camera_fps: float = 0.0,
    max_batch: int = 0,
    replicas: int = 0,
    predicted_load: float = 0.0,
    reason: str = "",
    ttl_s: float = 300.0,
) -> ScalingCommand:
    """A command for a kiosk id, ``group:<name>`` or a deployment; zero fields mean "leave as is"."""
    return ScalingCommand(
        command_id=uuid.uuid4().hex,
        target=target,
        inference_workers=inference_workers,
        camera_fps=camera_fps,
        max_batch=max_batch,
        replicas=replicas,
        predicted_load=predicted_load,
        reason=reason,
        expires_at=time.time_ns() + int(ttl_s * 1e9),
    )


async def publish_commands(
    commands: list[ScalingCommand], *, producer_id: str, settings: BusSettings, keyring: Keyring, outbox_path: Path
) -> None:
    """Seal (signed, not encrypted: commands carry no patient data) and deliver through a durable outbox."""
    outbox = Outbox(outbox_path, signing_key=keyring.signing_key(producer_id))
    sender = OutboxSender(outbox, settings, BusMetrics(producer_id))
    try:
        outbox.put(
            [
                SealRequest(topic=CONTROL_SCALING.name, key=c.target.encode(), message=c, hospital_id="", data_key=None)
                for c in commands
            ]
        )
        await sender.start()
        if not await sender.drain(30.0):
            raise TimeoutError("the broker did not acknowledge the command within 30 s (it stays in the outbox)")
    finally:
        await sender.stop()
        outbox.close()
