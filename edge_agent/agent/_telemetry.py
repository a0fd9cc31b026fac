"""Kiosk telemetry: per-stage latency percentiles, request rate and load, as a ``Telemetry`` message."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
from prometheus_client import CollectorRegistry, Gauge

from schemas import StageLatency, Telemetry

__all__ = ["KioskGauges", "StageTimer", "build_telemetry"]


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
    clock_offset_estimated: bool = False,
    clock_offset_samples: int = 0,
    clock_offset_spread_ns: int = 0,
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
        clock_offset_estimated=clock_offset_estimated,
        clock_offset_samples=clock_offset_samples,
        clock_offset_spread_ns=clock_offset_spread_ns,
        load=min(1.0, rate / capacity_per_s) if capacity_per_s > 0 else 0.0,
    )
    for stage, (p50, p99) in sorted(timer.percentiles().items()):
        msg.latencies.append(StageLatency(stage=stage, p50_ms=p50, p99_ms=p99))
    return msg


class KioskGauges:
    """The telemetry record, also as Prometheus gauges on the process's registry (the autoscaler reads
    ``medkiosk_kiosk_load``)."""

    def __init__(self, registry: CollectorRegistry, kiosk_id: str) -> None:
        self._kiosk = kiosk_id
        self._load = Gauge("medkiosk_kiosk_load", "Fraction of capacity in use", ["kiosk"], registry=registry)
        self._rate = Gauge("medkiosk_kiosk_request_rate", "Triage requests per second", ["kiosk"], registry=registry)
        self._queue = Gauge("medkiosk_kiosk_queue_depth", "Inference requests waiting", ["kiosk"], registry=registry)
        self._offset = Gauge(
            "medkiosk_kiosk_clock_offset_seconds", "Camera-to-kiosk clock offset", ["kiosk"], registry=registry
        )
        self._stage = Gauge(
            "medkiosk_kiosk_stage_latency_seconds",
            "Per-stage latency",
            ["kiosk", "stage", "quantile"],
            registry=registry,
        )

    def update(self, msg: Telemetry) -> None:
        self._load.labels(self._kiosk).set(msg.load)
        self._rate.labels(self._kiosk).set(msg.request_rate)
        self._queue.labels(self._kiosk).set(msg.queue_depth)
        self._offset.labels(self._kiosk).set(msg.clock_offset_ns / 1e9)
        for stage in msg.latencies:
            self._stage.labels(self._kiosk, stage.stage, "0.5").set(stage.p50_ms / 1000)
            self._stage.labels(self._kiosk, stage.stage, "0.99").set(stage.p99_ms / 1000)
