"""The autoscaler's current view per target, shared by the loop that decides and the actuators that serve it."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

__all__ = ["ScalingBoard", "TargetStatus"]


@dataclass(frozen=True, kw_only=True)
class TargetStatus:
    target: str
    #: What the policy wants now (min/max, cooldowns and the scale-in rule applied).
    replicas: int
    observed_load: float
    predicted_load: float
    model_version: str
    updated_at: float


@dataclass(kw_only=True)
class ScalingBoard:
    """Latest ``TargetStatus`` per target; ``wait_changed`` lets streams push updates as they happen."""

    stale_after_s: float = 120.0
    _status: dict[str, TargetStatus] = field(default_factory=dict)
    _version: int = 0
    _changed: asyncio.Condition | None = None

    def _cond(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    @property
    def version(self) -> int:
        return self._version

    async def publish(self, status: TargetStatus) -> None:
        cond = self._cond()
        async with cond:
            self._status[status.target] = status
            self._version += 1
            cond.notify_all()

    def get(self, target: str) -> TargetStatus | None:
        return self._status.get(target)

    def fresh(self, target: str, now: float | None = None) -> TargetStatus | None:
        """The status if it is younger than ``stale_after_s`` (a dead forecaster must not pin replicas)."""
        status = self._status.get(target)
        now = time.time() if now is None else now
        if status is None or now - status.updated_at > self.stale_after_s:
            return None
        return status

    def targets(self) -> list[str]:
        return sorted(self._status)

    async def wait_changed(self, since: int, timeout_s: float) -> int:
        """Return the version once it is past ``since`` (or after ``timeout_s``)."""
        cond = self._cond()
        async with cond:
            if self._version <= since:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(cond.wait_for(lambda: self._version > since), timeout_s)
            return self._version
