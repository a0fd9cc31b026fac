"""The autoscalers compared in simulation: the forecast policy, HPA-style reactive and KEDA-lag-style.

The forecast scaler runs the very ``decide`` the service runs, fed by any ``Forecaster``'s output; the
two reactive ones follow the documented Kubernetes formulas (``desired = ceil(current * metric /
target)``, a 10 % tolerance, the highest recommendation of the last 300 s for scale-down).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from cloud_workers.autoscaler._policy import PolicyConfig, PolicyState, decide
from cloud_workers.autoscaler._simulator import SimConfig, SimView

__all__ = ["ForecastScaler", "HpaScaler", "KedaLagScaler"]


@dataclass(kw_only=True)
class ForecastScaler:
    """``decide`` over precomputed forecasts: ``forecasts[b]`` predicts buckets ``b, b+1, ...`` (counts)
    from the history before bucket ``b``; ``quantile_index`` selects the column the policy sizes on."""

    name: str
    forecasts: npt.NDArray[np.float64]
    quantile_index: int
    sim: SimConfig
    policy: PolicyConfig
    #: Seconds of queue the observed load includes (a backlog must drain, not just stop growing).
    drain_s: float = 60.0
    _state: PolicyState | None = field(default=None, init=False)

    def desired(self, view: SimView) -> int:
        state = self._state or PolicyState(replicas=view.replicas)
        state = replace(state, replicas=view.replicas)
        per_replica = self.sim.capacity * view.replicas
        # The replicas asked for now serve from now + startup: look that far ahead.
        ahead_s = view.now_s + self.sim.startup_s + self.sim.step_s
        last_bucket = min(int(ahead_s // self.sim.bucket_s), len(self.forecasts) - 1)
        b = min(view.bucket, len(self.forecasts) - 1)
        steps = min(last_bucket - b + 1, self.forecasts.shape[1])
        pred_rate = float(np.max(self.forecasts[b, :steps, self.quantile_index])) / self.sim.bucket_s
        observed = (view.observed_rate + view.queue / self.drain_s) / per_replica
        decision, self._state = decide(
            state,
            target="sim",
            observed_load=observed,
            predicted_load=pred_rate / per_replica,
            now_s=view.now_s,
            cfg=self.policy,
        )
        return decision.replicas_to


def _stabilised(history: deque[tuple[float, int]], now_s: float, window_s: float, rec: int) -> int:
    history.append((now_s, rec))
    while history and history[0][0] < now_s - window_s:
        history.popleft()
    return max(r for _, r in history)


@dataclass(kw_only=True)
class HpaScaler:
    """Kubernetes HPA on a per-pod utilisation metric (requests per second over capacity)."""

    sim: SimConfig
    target: float = 0.8
    tolerance: float = 0.1
    stabilisation_s: float = 300.0
    name: str = "hpa_reactive"
    _history: deque[tuple[float, int]] = field(default_factory=deque, init=False)

    def desired(self, view: SimView) -> int:
        ready = max(view.ready, 1)
        ratio = (view.observed_rate / (ready * self.sim.capacity)) / self.target
        rec = view.replicas if abs(ratio - 1.0) <= self.tolerance else math.ceil(ready * ratio - 1e-9)
        # Scale-up at most doubles (or +4) per sync, as the HPA's default scale-up policy allows.
        rec = min(rec, max(2 * view.replicas, view.replicas + 4))
        return _stabilised(self._history, view.now_s, self.stabilisation_s, rec)


@dataclass(kw_only=True)
class KedaLagScaler:
    """KEDA's Kafka scaler: ``desired = ceil(lag / lag_threshold)``, capped at the partition count.

    Lag at a poll is the backlog plus the records produced since the consumers last committed (one
    step). ``lag_threshold`` is in this simulation's units; the default puts steady state at the same
    0.8 utilisation the other policies aim for.
    """

    sim: SimConfig
    partitions: int = 24
    lag_threshold: float = 0.0
    tolerance: float = 0.1
    stabilisation_s: float = 300.0
    name: str = "keda_lag"
    _history: deque[tuple[float, int]] = field(default_factory=deque, init=False)

    def desired(self, view: SimView) -> int:
        threshold = self.lag_threshold or self.sim.target_util * self.sim.capacity * self.sim.step_s
        lag = view.queue + view.observed_rate * self.sim.step_s
        ratio = lag / (threshold * max(view.replicas, 1))
        rec = view.replicas if abs(ratio - 1.0) <= self.tolerance else math.ceil(lag / threshold - 1e-9)
        rec = min(rec, self.partitions)
        return _stabilised(self._history, view.now_s, self.stabilisation_s, rec)
