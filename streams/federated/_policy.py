"""A round's DP policy and the accounting anyone can redo from the log: pure functions, no Kafka.

The coordinator announces a :class:`~schemas.DpPolicy` per round (at least this noise multiplier, at most this
sampling rate, steps and clip norm). A hospital's record-level epsilon is then computed from the policies of the
rounds it took part in, never taken from anyone's word: each such round adds one ``(noise_multiplier,
max_sample_rate, max_steps_per_round)`` entry to an RDP accountant history (a client that trains with more noise,
a lower rate or fewer steps spends less, so the figure is an upper bound). Noise on the sum (central and the
clients' distributed shares) is accounted separately, client-level, as a Gaussian mechanism of sensitivity
``clip_norm`` per round (no subsampling: every round releases a sum).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from schemas import DpPolicy, DpStep

__all__ = [
    "dp_step_violation",
    "history_epsilon",
    "policy_entry",
    "policy_violation",
    "sum_noise_multiplier",
]

#: Relative slack when comparing declared parameters with a policy (float round trips, never privacy).
_RTOL = 1e-9


def policy_violation(policy: DpPolicy) -> str | None:
    """Why ``policy`` cannot be accounted (None when it can)."""
    if not (math.isfinite(policy.noise_multiplier) and policy.noise_multiplier > 0):
        return f"noise multiplier must be positive, got {policy.noise_multiplier}"
    if not 0 < policy.max_sample_rate <= 1:
        return f"max sample rate must be in (0, 1], got {policy.max_sample_rate}"
    if policy.max_steps_per_round < 1:
        return "max steps per round must be at least 1"
    if not (math.isfinite(policy.max_grad_norm) and policy.max_grad_norm > 0):
        return f"max grad norm must be positive, got {policy.max_grad_norm}"
    if not 0 < policy.delta < 1:
        return f"delta must be in (0, 1), got {policy.delta}"
    return None


def dp_step_violation(policy: DpPolicy, step: DpStep | tuple[float, float, int] | None) -> str | None:
    """Why a round trained with ``step`` (noise multiplier, sample rate, steps) does not meet ``policy``."""
    if step is None:
        return "no DP-SGD parameters declared"
    z, q, steps = (step.noise_multiplier, step.sample_rate, step.steps) if isinstance(step, DpStep) else step
    if not z >= policy.noise_multiplier * (1 - _RTOL):
        return f"noise multiplier {z:g} < the policy's {policy.noise_multiplier:g}"
    if not 0 < q <= policy.max_sample_rate * (1 + _RTOL):
        return f"sample rate {q:g} is not in (0, {policy.max_sample_rate:g}]"
    if not 1 <= steps <= policy.max_steps_per_round:
        return f"{steps} steps; the policy allows 1..{policy.max_steps_per_round}"
    return None


def policy_entry(policy: DpPolicy) -> tuple[float, float, int]:
    """The accountant entry one round under ``policy`` costs at most."""
    return (float(policy.noise_multiplier), float(policy.max_sample_rate), int(policy.max_steps_per_round))


@functools.cache
def _opacus_rdp() -> ModuleType:
    """opacus's RDP analysis (``opacus/accountants/analysis/rdp.py``: numpy and scipy only), loaded from its file so
    that the coordinator and keyholder get opacus's exact numbers without opacus's package import (torch)."""
    spec = importlib.util.find_spec("opacus")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("opacus is needed for DP accounting")
    path = Path(spec.origin).parent / "accountants" / "analysis" / "rdp.py"
    mod_spec = importlib.util.spec_from_file_location("medkiosk_opacus_rdp", path)
    if mod_spec is None or mod_spec.loader is None:
        raise ModuleNotFoundError(f"cannot load {path}")
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return module


@functools.lru_cache(maxsize=512)
def _rdp_per_step(noise_multiplier: float, sample_rate: float) -> tuple[float, ...]:
    from streams.federated._dp import RDP_ORDERS

    rdp: Any = _opacus_rdp().compute_rdp(
        q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=list(RDP_ORDERS)
    )
    return tuple(float(v) for v in rdp)


def history_epsilon(history: Iterable[tuple[float, float, int]], delta: float) -> float:
    """Epsilon at ``delta`` of an RDP accountant history ``[(noise_multiplier, sample_rate, steps), ...]`` (opacus's
    RDP analysis at :data:`~streams.federated.RDP_ORDERS`; per-step RDP cached); 0 for an empty history."""
    entries = [(float(z), float(q), int(t)) for z, q, t in history]
    if not entries:
        return 0.0
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")
    from streams.federated._dp import RDP_ORDERS

    orders = list(RDP_ORDERS)
    total = [0.0] * len(orders)
    for z, q, t in entries:
        if not (z > 0 and 0 < q <= 1 and t >= 1):
            raise ValueError(f"not an accountant entry: {(z, q, t)}")
        for i, v in enumerate(_rdp_per_step(z, q)):
            total[i] += v * t
    eps, _ = _opacus_rdp().get_privacy_spent(orders=orders, rdp=total, delta=delta)
    return float(eps)


def sum_noise_multiplier(
    *, central_noise_multiplier: float, client_noise_std: float, contributors: int, clip_norm: float
) -> float:
    """Noise multiplier of the Gaussian noise on a round's SUM relative to its client-level sensitivity
    ``clip_norm``: central std ``central_noise_multiplier * clip_norm`` plus ``contributors`` independent client
    shares of std ``client_noise_std`` (only the shares actually added count); 0 when there is none."""
    if clip_norm <= 0 or contributors < 0:
        raise ValueError("clip_norm must be positive and contributors non-negative")
    var = (central_noise_multiplier * clip_norm) ** 2 + contributors * client_noise_std**2
    return math.sqrt(var) / clip_norm
