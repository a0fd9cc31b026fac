"""Signals from the bus into regular per-target series: kiosk telemetry and consumer-group lag.

Samples arrive irregularly, late, twice, or not at all. They are put in fixed buckets of ``step_s`` by
their own timestamp; a bucket closes ``max_lateness_s`` after its end, and a sample for a closed bucket
is dropped and counted (``late_dropped``), never rewrites history the forecaster has seen. In a closed
bucket each source (a kiosk, a consumer group) contributes the mean of its samples; a source with no
sample is carried forward for ``max_fill_steps`` buckets (counted as ``filled``) and is taken as gone
after that. A target's rate is the sum over its sources; its load is that rate over the sum of their
capacities (each source's rate / load), so a group of kiosks reads as one pool.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from schemas import Telemetry

__all__ = ["Sample", "SeriesBuilder", "SeriesConfig", "TargetPoint", "lag_sample", "telemetry_samples"]


@dataclass(frozen=True, kw_only=True)
class Sample:
    target: str
    source: str
    at_s: float
    #: Arrivals per second.
    rate: float
    #: Fraction of the source's capacity in use.
    load: float


@dataclass(frozen=True, kw_only=True)
class TargetPoint:
    bucket: int
    rate: float
    load: float
    sources: int
    filled: int


@dataclass(frozen=True, kw_only=True)
class SeriesConfig:
    step_s: float = 10.0
    max_lateness_s: float = 15.0
    max_fill_steps: int = 3
    history: int = 4096
    #: Samples stamped further than this ahead of the local clock are refused (a wrong kiosk clock).
    max_future_s: float = 60.0


def telemetry_samples(
    t: Telemetry, groups: dict[str, list[str]] | None = None, *, drain_s: float = 10.0
) -> list[Sample]:
    """One sample for the kiosk's own target, one per group (``group:<name>``) that lists it.

    A kiosk reports its load capped at 1; its queue says how far past capacity it is, so the queue counts
    as load until it could be worked off in ``drain_s`` seconds (a saturated kiosk reads above 1).
    """
    rate, load = float(t.request_rate), float(t.load)
    if not (math.isfinite(rate) and math.isfinite(load)) or rate < 0 or load < 0 or not t.kiosk_id:
        return []
    if load > 0 and rate > 0 and t.queue_depth:
        load += t.queue_depth / (rate / load * drain_s)
    at = t.at / 1e9
    targets = [t.kiosk_id] + [f"group:{g}" for g, members in (groups or {}).items() if t.kiosk_id in members]
    return [Sample(target=x, source=t.kiosk_id, at_s=at, rate=rate, load=load) for x in targets]


def lag_sample(
    target: str, group: str, *, at_s: float, input_rate: float, lag: int, replicas: int, capacity: float, drain_s: float
) -> Sample:
    """A deployment's sample from its consumer group: load is (input rate + lag / drain_s) over the
    capacity of its replicas, so a backlog reads as load until it is worked off."""
    cap = max(replicas, 1) * capacity
    rate = max(input_rate, 0.0)
    return Sample(target=target, source=group, at_s=at_s, rate=rate, load=(rate + max(lag, 0) / drain_s) / cap)


@dataclass(kw_only=True)
class _Target:
    open: dict[int, dict[str, list[tuple[float, float]]]] = field(default_factory=lambda: defaultdict(dict))
    last: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    points: list[TargetPoint] = field(default_factory=list)
    closed_until: int | None = None


class SeriesBuilder:
    """Buckets samples per target; ``close(now)`` emits the buckets that can no longer change."""

    def __init__(self, cfg: SeriesConfig | None = None) -> None:
        self.cfg = cfg or SeriesConfig()
        self._targets: dict[str, _Target] = defaultdict(_Target)
        self.late_dropped = 0
        self.refused = 0
        self.accepted = 0

    def add(self, sample: Sample, now_s: float) -> bool:
        """File one sample; ``False`` when it is too late, from the future or not a number."""
        if not (math.isfinite(sample.at_s) and math.isfinite(sample.rate) and math.isfinite(sample.load)):
            self.refused += 1
            return False
        if sample.at_s > now_s + self.cfg.max_future_s:
            self.refused += 1
            return False
        bucket = math.floor(sample.at_s / self.cfg.step_s)
        t = self._targets[sample.target]
        if t.closed_until is not None and bucket < t.closed_until:
            self.late_dropped += 1
            return False
        t.open[bucket].setdefault(sample.source, []).append((sample.rate, sample.load))
        self.accepted += 1
        return True

    def close(self, now_s: float) -> dict[str, list[TargetPoint]]:
        """Close every bucket that ended more than ``max_lateness_s`` ago; new points per target."""
        last_closable = math.floor((now_s - self.cfg.max_lateness_s) / self.cfg.step_s)  # exclusive
        out: dict[str, list[TargetPoint]] = {}
        for name, t in self._targets.items():
            start = t.closed_until if t.closed_until is not None else min(t.open, default=last_closable)
            new = [self._close_one(t, b) for b in range(start, last_closable)]
            t.closed_until = max(start, last_closable)
            if new:
                t.points.extend(new)
                del t.points[: max(0, len(t.points) - self.cfg.history)]
                out[name] = new
        return out

    def _close_one(self, t: _Target, bucket: int) -> TargetPoint:
        per_source = t.open.pop(bucket, {})
        for src, vals in per_source.items():
            t.last[src] = (bucket, float(np.mean([v[0] for v in vals])), float(np.mean([v[1] for v in vals])))
        rates, caps, loads, filled = [], [], [], 0
        for src, (seen, rate, load) in list(t.last.items()):
            if bucket - seen > self.cfg.max_fill_steps:
                del t.last[src]  # gone: no longer part of the pool
                continue
            filled += src not in per_source
            rates.append(rate)
            loads.append(load)
            if load > 0:
                caps.append(rate / load)
        total = float(sum(rates))
        cap = float(sum(caps))
        load = total / cap if cap > 0 else (float(np.mean(loads)) if loads else 0.0)
        return TargetPoint(bucket=bucket, rate=total, load=load, sources=len(rates), filled=filled)

    def targets(self) -> list[str]:
        return sorted(n for n, t in self._targets.items() if t.points)

    def points(self, target: str) -> list[TargetPoint]:
        return list(self._targets[target].points) if target in self._targets else []

    def rates(self, target: str) -> npt.NDArray[np.float64]:
        return np.array([p.rate for p in self.points(target)], dtype=np.float64)
