"""The scaling policy: pure functions from (observed load, predicted load, replicas, clock) to a decision.

Scale out when the predicted load (an upper quantile over the horizon) exceeds ``threshold``, sized so
the predicted load falls under ``target``; a forecast that missed is caught by the observed load too.
Scale in only when the observed load **and** the predicted load both fit in fewer replicas (a forecast
alone never removes capacity). Cooldowns damp flapping; replicas stay within ``[min, max]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import Enum

__all__ = ["Action", "Decision", "PolicyConfig", "PolicyState", "decide", "decision_log_line"]


class Action(Enum):
    SCALE_OUT = "scale_out"
    SCALE_IN = "scale_in"
    HOLD = "hold"


@dataclass(frozen=True, kw_only=True)
class PolicyConfig:
    """Thresholds are fractions of capacity in use (load 1.0 = saturated)."""

    threshold: float = 0.8
    #: Scale-out sizes for predicted load at most this.
    target: float = 0.8
    #: Scale-in only to a count where observed and predicted load stay at most this (hysteresis).
    scale_in_target: float = 0.65
    min_replicas: int = 1
    max_replicas: int = 20
    scale_out_cooldown_s: float = 30.0
    scale_in_cooldown_s: float = 120.0

    def __post_init__(self) -> None:
        if not 0 < self.scale_in_target <= self.target <= self.threshold <= 1.5:
            raise ValueError("need 0 < scale_in_target <= target <= threshold")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise ValueError("need 1 <= min_replicas <= max_replicas")


@dataclass(frozen=True, kw_only=True)
class PolicyState:
    """What the policy remembers between decisions for one target."""

    replicas: int
    last_out_s: float = -math.inf
    last_in_s: float = -math.inf


@dataclass(frozen=True, kw_only=True)
class Decision:
    target: str
    action: Action
    replicas_from: int
    replicas_to: int
    observed_load: float
    predicted_load: float
    reason: str
    at_s: float


def _clamp(n: int, cfg: PolicyConfig) -> int:
    return max(cfg.min_replicas, min(cfg.max_replicas, n))


def _needed(replicas: int, load: float, target: float) -> int:
    """Replicas that bring ``load`` (measured at ``replicas``) to at most ``target``."""
    # The epsilon keeps float noise (0.8 * 5 / 0.8 = 5.000000001) from adding a replica.
    return max(1, math.ceil(replicas * max(load, 0.0) / target - 1e-9))


def decide(
    state: PolicyState, *, target: str, observed_load: float, predicted_load: float, now_s: float, cfg: PolicyConfig
) -> tuple[Decision, PolicyState]:
    """One decision for one target; loads are measured at (or predicted for) ``state.replicas``."""
    r = state.replicas
    have_observed, have_forecast = math.isfinite(observed_load), math.isfinite(predicted_load)
    observed = observed_load if have_observed else 0.0
    # Without a forecast the policy is reactive on the observed load (it may scale out, never in).
    predicted = predicted_load if have_forecast else observed

    def out(action: Action, to: int, reason: str) -> Decision:
        return Decision(
            target=target,
            action=action,
            replicas_from=r,
            replicas_to=to,
            observed_load=observed,
            predicted_load=predicted,
            reason=reason,
            at_s=now_s,
        )

    if r < cfg.min_replicas or r > cfg.max_replicas:
        to = _clamp(r, cfg)
        act = Action.SCALE_OUT if to > r else Action.SCALE_IN
        return out(act, to, f"outside [{cfg.min_replicas}, {cfg.max_replicas}]"), _moved(state, to, now_s)
    if not have_observed:
        return out(Action.HOLD, r, "no observed load"), state
    hot = max(predicted, observed)
    if hot > cfg.threshold:
        to = _clamp(_needed(r, hot, cfg.target), cfg)
        which = "predicted" if predicted >= observed else "observed"
        if to <= r:
            return out(Action.HOLD, r, f"{which} load {hot:.2f} > {cfg.threshold} but at max_replicas"), state
        if now_s - state.last_out_s < cfg.scale_out_cooldown_s:
            return out(Action.HOLD, r, "scale-out cooldown"), state
        return (
            out(Action.SCALE_OUT, to, f"{which} load {hot:.2f} > {cfg.threshold}: size for <= {cfg.target}"),
            _moved(state, to, now_s),
        )
    to = _clamp(_needed(r, hot, cfg.scale_in_target), cfg)
    if to < r and not have_forecast:
        return out(Action.HOLD, r, "no forecast: never scale in on the observed load alone"), state
    if to < r:
        since = now_s - max(state.last_in_s, state.last_out_s)
        if since < cfg.scale_in_cooldown_s:
            return out(Action.HOLD, r, "scale-in cooldown"), state
        return (
            out(
                Action.SCALE_IN,
                to,
                f"observed {observed:.2f} and predicted {predicted:.2f} both fit {to} replicas "
                f"at <= {cfg.scale_in_target}",
            ),
            _moved(state, to, now_s),
        )
    return out(Action.HOLD, r, "within band"), state


def _moved(state: PolicyState, to: int, now_s: float) -> PolicyState:
    if to > state.replicas:
        return replace(state, replicas=to, last_out_s=now_s)
    return replace(state, replicas=to, last_in_s=now_s)


def decision_log_line(d: Decision) -> str:
    """The one log line written per action (holds are not logged)."""
    return (
        f"autoscaler decision target={d.target} action={d.action.value} replicas={d.replicas_from}->{d.replicas_to} "
        f"observed_load={d.observed_load:.3f} predicted_load={d.predicted_load:.3f} reason={d.reason!r}"
    )
