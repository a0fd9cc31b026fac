"""Presentation-attack-detection metrics (ISO/IEC 30107-3 names) from live scores and labels (pure numpy).

A sample is accepted as live when its score is strictly above the threshold (as the fusion rule is).
APCER: attacks accepted / attacks. BPCER: live (bona fide) rejected / live. ACER: their mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["auc", "equal_error_rate", "pad_metrics"]


def auc(scores: ArrayLike, live: ArrayLike) -> float:
    """Area under the ROC curve: P(live score > attack score), ties counted half (Mann-Whitney)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(live, dtype=bool)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(order.size, dtype=np.float64)
    allv = np.concatenate([pos, neg])[order]
    # Average ranks over ties.
    i = 0
    while i < allv.size:
        j = i
        while j + 1 < allv.size and allv[j + 1] == allv[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    rank_sum = ranks[: pos.size].sum()
    return float((rank_sum - pos.size * (pos.size + 1) / 2.0) / (pos.size * neg.size))


def equal_error_rate(scores: ArrayLike, live: ArrayLike) -> tuple[float, float]:
    """``(eer, threshold)``: the threshold among the scores where APCER and BPCER are closest, and their mean."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(live, dtype=bool)
    if y.all() or not y.any():
        return float("nan"), float("nan")
    best = (2.0, 0.5)
    chosen = 0.5
    for t in np.unique(np.concatenate([s, [-np.inf]])):
        apcer = float(np.mean(s[~y] > t))
        bpcer = float(np.mean(s[y] <= t))
        gap = abs(apcer - bpcer)
        if gap < best[0] or (gap == best[0] and (apcer + bpcer) / 2 < best[1]):
            best = (gap, (apcer + bpcer) / 2.0)
            chosen = float(t)
    return best[1], chosen


def _rates(s: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    accept = s > threshold
    apcer = float(np.mean(accept[~y])) if (~y).any() else float("nan")
    bpcer = float(np.mean(~accept[y])) if y.any() else float("nan")
    return {
        "accuracy": float(np.mean(accept == y)),
        "apcer": apcer,
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2.0,
    }


def pad_metrics(
    scores: ArrayLike,
    live: ArrayLike,
    *,
    threshold: float,
    attack_types: Sequence[str | None] | None = None,
) -> dict[str, object]:
    """Accuracy, APCER, BPCER, ACER at ``threshold`` and at 0.5, AUC, EER; APCER per attack type when given."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(live, dtype=bool)
    at = _rates(s, y, threshold)
    half = _rates(s, y, 0.5)
    eer, eer_threshold = equal_error_rate(s, y)
    out: dict[str, object] = {
        "threshold": threshold,
        **at,
        "accuracy_at_0.5": half["accuracy"],
        "apcer_at_0.5": half["apcer"],
        "bpcer_at_0.5": half["bpcer"],
        "auc": auc(s, y),
        "eer": eer,
        "eer_threshold": eer_threshold,
        "n_live": int(y.sum()),
        "n_attack": int((~y).sum()),
    }
    if attack_types is not None:
        kinds = np.asarray([k or "unknown" for k in attack_types], dtype=object)
        per: Mapping[str, float] = {
            str(k): float(np.mean(s[(kinds == k) & ~y] > threshold)) for k in sorted(set(kinds[~y].tolist()))
        }
        out["apcer_by_type"] = dict(per)
    return out
