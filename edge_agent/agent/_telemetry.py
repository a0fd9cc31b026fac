"""Kiosk telemetry: per-stage latency percentiles, request rate and load, as a ``Telemetry`` message."""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from schemas import StageLatency, Telemetry

__all__ = ["StageTimer", "build_telemetry"]


class StageTimer:
    """Keeps the last ``window`` latencies of each named stage (capture, liveness, fusion, outbox, triage...)."""

    def __init__(self, window: int = 1024) -> None:
        self._window = window
        self._samples: dict[str, deque[float]] = {}
        self._count = 0
        self._since = time.monotonic()

    def observe(self, stage: str, seconds: float) -> None:
        self._samples.setdefault(stage, deque(maxlen=self._window)).append(seconds)
        if stage == "request":
            self._count += 1

    def percentiles(self) -> dict[str, tuple[float, float]]:
        """stage -> (p50 ms, p99 ms) over the retained window."""
        out = {}
        for stage, samples in self._samples.items():
            if samples:
                arr = np.fromiter(samples, dtype=np.float64) * 1000.0
                out[stage] = (float(np.percentile(arr, 50)), float(np.percentile(arr, 99)))
        return out

    def take_rate(self) -> float:
        """Requests per second since the last call."""
        now = time.monotonic()
        rate = self._count / max(now - self._since, 1e-9)
        self._count, self._since = 0, now
        return rate


def build_telemetry(
    *,
    kiosk_id: str,
    hospital_id: str,
    timer: StageTimer,
    queue_depth: int,
    outbox_depth: int,
    clock_offset_ns: int,
    capacity_per_s: float,
) -> Telemetry:
    """One telemetry record; ``load`` is the request rate over the kiosk's current capacity, capped at 1."""
    rate = timer.take_rate()
    msg = Telemetry(
        kiosk_id=kiosk_id,
        hospital_id=hospital_id,
        at=time.time_ns(),
        request_rate=rate,
        queue_depth=queue_depth,
        outbox_depth=outbox_depth,
        clock_offset_ns=clock_offset_ns,
        load=min(1.0, rate / capacity_per_s) if capacity_per_s > 0 else 0.0,
    )
    for stage, (p50, p99) in sorted(timer.percentiles().items()):
        msg.latencies.append(StageLatency(stage=stage, p50_ms=p50, p99_ms=p99))
    return msg
