"""Commands from the cloud: which ones a kiosk obeys, and what applying one means."""

from __future__ import annotations

import time
from dataclasses import dataclass

from schemas import RejectReason, ScalingCommand
from streams import EnvelopeRejected, Keyring, VerifiedEvent

__all__ = ["CommandPolicy", "ScalingChange", "authorize_command"]


@dataclass(frozen=True, slots=True)
class ScalingChange:
    """What a command asks of this kiosk; ``None`` fields are left as they are."""

    command_id: str
    inference_workers: int | None
    camera_fps: float | None
    max_batch: int | None


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    kiosk_id: str
    groups: tuple[str, ...]
    allowed_producers: tuple[str, ...]

    def targets_me(self, target: str) -> bool:
        return target == self.kiosk_id or target in {f"group:{g}" for g in self.groups} or target == "group:*"


def _reject(event: VerifiedEvent, reason: int, detail: str) -> EnvelopeRejected:
    return EnvelopeRejected(reason, detail, producer_id=event.envelope.producer_id, seq=event.envelope.seq)


def authorize_command(event: VerifiedEvent, policy: CommandPolicy, keyring: Keyring) -> ScalingChange | None:
    """Check a verified ``control.scaling.v1`` envelope; ``None`` when it is for someone else.

    Raises ``EnvelopeRejected`` (UNAUTHORIZED, STALE, MALFORMED) for commands that must go to the DLQ.
    """
    env = event.envelope
    info = keyring.producers.get(env.producer_id)
    if info is None or info.hospital_id or env.producer_id not in policy.allowed_producers:
        raise _reject(event, RejectReason.REJECT_REASON_UNAUTHORIZED, f"{env.producer_id} may not command kiosks")
    cmd = event.message
    if not isinstance(cmd, ScalingCommand):
        raise _reject(event, RejectReason.REJECT_REASON_MALFORMED, f"expected ScalingCommand, got {env.schema}")
    if not policy.targets_me(cmd.target):
        return None
    if cmd.expires_at and cmd.expires_at < time.time_ns():
        raise _reject(event, RejectReason.REJECT_REASON_STALE, f"command {cmd.command_id} expired")
    if cmd.inference_workers > 64 or cmd.max_batch > 1024 or not 0 <= cmd.camera_fps <= 120:
        raise _reject(event, RejectReason.REJECT_REASON_MALFORMED, f"command {cmd.command_id} is out of range")
    return ScalingChange(
        command_id=cmd.command_id,
        inference_workers=cmd.inference_workers or None,
        camera_fps=cmd.camera_fps or None,
        max_batch=cmd.max_batch or None,
    )
