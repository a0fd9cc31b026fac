"""Online camera->kiosk clock offset: estimated from each frame's camera stamp and its arrival on the kiosk.

A frame stamped ``c`` on the camera clock arrives at ``a`` on the kiosk clock, ``a - c = offset + delay`` with
``delay >= 0`` (exposure end to hand-over, transport). One-way stamps cannot split the offset from the smallest
delay, so the estimate is a low percentile of ``a - c`` over a sliding window: the offset plus the pipeline's
minimum delay, which is what aligning a frame with a card read (itself stamped on arrival) needs. A low
percentile rather than the minimum, so one frame stamped early by a glitch cannot drag the estimate; a window, so
a clock that drifts or steps (NTP) is followed within ``window`` frames.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["ClockOffsetConfig", "ClockOffsetEstimator"]


@dataclass(frozen=True, kw_only=True)
class ClockOffsetConfig:
    """Window and percentile of the online estimate."""

    #: Frames in the sliding window (150: ten seconds at 15 fps).
    window: int = 150
    #: No estimate from fewer frames than this.
    min_samples: int = 15
    #: Which percentile of ``arrival - camera stamp`` is the estimate (low: the least-delayed frames).
    percentile: float = 10.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_samples <= self.window:
            raise ValueError("need 1 <= min_samples <= window")
        if not 0.0 <= self.percentile <= 100.0:
            raise ValueError("percentile must be in [0, 100]")


class ClockOffsetEstimator:
    """Feed ``add(camera_ns, kiosk_ns)`` once per frame; ``estimate`` is the offset to add to camera stamps."""

    def __init__(self, config: ClockOffsetConfig | None = None) -> None:
        self.config = config or ClockOffsetConfig()
        self._diffs: deque[int] = deque(maxlen=self.config.window)

    def add(self, camera_ns: int, kiosk_ns: int) -> None:
        """One frame: its capture stamp (camera clock) and when it reached the kiosk (kiosk clock)."""
        self._diffs.append(kiosk_ns - camera_ns)

    @property
    def samples(self) -> int:
        """Pairs in the window."""
        return len(self._diffs)

    def _percentile(self, q: float) -> int:
        ordered = sorted(self._diffs)
        return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]

    def estimate(self) -> int | None:
        """The offset (ns), or None before ``min_samples`` frames."""
        if len(self._diffs) < self.config.min_samples:
            return None
        return self._percentile(self.config.percentile)

    def spread(self) -> int:
        """90th minus 10th percentile of the window (ns): how much the capture-to-arrival delay jitters."""
        if not self._diffs:
            return 0
        return self._percentile(90.0) - self._percentile(10.0)
