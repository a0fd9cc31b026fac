"""A replica simulator: arrivals from a trace, replicas with a start-up delay, per-replica capacity, a queue.

Fluid model on a fixed step: each step's arrivals join the queue, ready replicas serve up to their
capacity, the rest waits. Replicas asked for become ready ``startup_s`` later (pod start plus a consumer
group rebalance) and cost from the moment they are asked for; removed replicas go at once. Pure
Python/NumPy, deterministic, no Kafka.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["SimConfig", "SimResult", "SimView", "Simulated", "simulate"]


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    step_s: float = 30.0
    #: Seconds per trace value (the trace's counts are per bucket).
    bucket_s: float = 300.0
    startup_s: float = 90.0
    #: Requests per second one replica serves.
    capacity: float = 0.1
    target_util: float = 0.8
    #: A step violates the SLO when the queue wait exceeds this or utilisation exceeds ``target_util``.
    slo_wait_s: float = 30.0
    min_replicas: int = 1
    max_replicas: int = 24


@dataclass(frozen=True, kw_only=True)
class SimView:
    """What an autoscaler sees at the end of a step."""

    now_s: float
    bucket: int
    ready: int
    #: Ready plus starting.
    replicas: int
    #: Arrivals per second during the step just ended.
    observed_rate: float
    queue: float


class Simulated(Protocol):
    """An autoscaler under simulation: returns the replica count it wants."""

    name: str

    def desired(self, view: SimView) -> int: ...


@dataclass(kw_only=True)
class SimResult:
    name: str
    slo_violation_minutes: float
    wait_violation_minutes: float
    util_violation_minutes: float
    saturated_minutes: float
    replica_minutes: float
    scaling_actions: int
    max_wait_s: float
    replicas: npt.NDArray[np.int64] = field(repr=False)
    times_s: npt.NDArray[np.float64] = field(repr=False)

    def summary(self) -> dict[str, float | int]:
        return {
            "slo_violation_minutes": round(self.slo_violation_minutes, 1),
            "wait_violation_minutes": round(self.wait_violation_minutes, 1),
            "util_violation_minutes": round(self.util_violation_minutes, 1),
            "saturated_minutes": round(self.saturated_minutes, 1),
            "replica_minutes": round(self.replica_minutes, 1),
            "scaling_actions": self.scaling_actions,
            "max_wait_s": round(self.max_wait_s, 1),
        }


def simulate(counts: npt.NDArray[np.float64], scaler: Simulated, cfg: SimConfig, *, initial: int) -> SimResult:
    """Run ``scaler`` over ``counts`` (arrivals per bucket); all metrics are per the whole run."""
    per_bucket = round(cfg.bucket_s / cfg.step_s)
    if per_bucket < 1 or not math.isclose(per_bucket * cfg.step_s, cfg.bucket_s):
        raise ValueError("bucket_s must be a whole number of steps")
    n = len(counts) * per_bucket
    ready_at: list[float] = [0.0] * max(cfg.min_replicas, initial)  # when each replica is (or was) ready
    queue = 0.0
    minutes = cfg.step_s / 60.0
    wait_v = util_v = slo_v = sat = rep_min = 0.0
    actions = 0
    max_wait = 0.0
    replicas = np.zeros(n, dtype=np.int64)
    times = np.arange(n, dtype=np.float64) * cfg.step_s
    for i in range(n):
        now = i * cfg.step_s
        rate = float(counts[i // per_bucket]) / cfg.bucket_s
        arrivals = rate * cfg.step_s
        ready = sum(1 for t in ready_at if t <= now)
        cap = ready * cfg.capacity * cfg.step_s
        served = min(queue + arrivals, cap)
        queue = queue + arrivals - served
        util = arrivals / cap if cap > 0 else math.inf
        wait = queue / (ready * cfg.capacity) if ready else (math.inf if queue > 0 else 0.0)
        max_wait = max(max_wait, wait)
        w_bad, u_bad = wait > cfg.slo_wait_s, util > cfg.target_util
        wait_v += minutes * w_bad
        util_v += minutes * u_bad
        slo_v += minutes * (w_bad or u_bad)
        sat += minutes * (util > 1.0)
        rep_min += minutes * len(ready_at)
        replicas[i] = len(ready_at)
        view = SimView(
            now_s=now + cfg.step_s,
            bucket=i // per_bucket,
            ready=ready,
            replicas=len(ready_at),
            observed_rate=rate,
            queue=queue,
        )
        want = max(cfg.min_replicas, min(cfg.max_replicas, int(scaler.desired(view))))
        if want != len(ready_at):
            actions += 1
            if want > len(ready_at):
                ready_at.extend([view.now_s + cfg.startup_s] * (want - len(ready_at)))
            else:
                ready_at = sorted(ready_at)[:want]  # the latest-started go first
    return SimResult(
        name=scaler.name,
        slo_violation_minutes=slo_v,
        wait_violation_minutes=wait_v,
        util_violation_minutes=util_v,
        saturated_minutes=sat,
        replica_minutes=rep_min,
        scaling_actions=actions,
        max_wait_s=max_wait,
        replicas=replicas,
        times_s=times,
    )
