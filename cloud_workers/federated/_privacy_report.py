"""An auditor's recomputation of every published privacy figure from the log alone (pure; no keys needed).

From ``fl.rounds.v1`` (announcements with their DP policies and central noise, closes with their contributors)
and ``fl.models.v1`` (each version's published ``privacy`` and ``central_privacy``), per model version:

* ``recomputed``: the record-level epsilon per hospital from the announced policies of the closed rounds it
  contributed to (one RDP entry per round). The coordinator may charge more (a hospital's signed accountant can
  declare more rounds than it contributed to), never less;
* ``from_history``: the epsilon recomputed from the accountant history the version publishes, which must equal
  the published figure;
* the client-level epsilon of the noise on the sums, likewise.

``ok`` is false when a published figure is below the recomputation or does not follow from its own history.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from cloud_workers.federated._accounting import PrivacyLedger
from schemas import ModelVersion, PrivacySpent, RoundAnnouncement, RoundClose
from streams.federated import history_epsilon

__all__ = ["privacy_report"]

_RTOL = 1e-9


def _from_history(spent: PrivacySpent) -> dict[str, float]:
    out = {}
    for c in spent.clients:
        hist = [(h.noise_multiplier, h.sample_rate, h.steps) for h in c.history]
        out[c.client_id] = math.inf if math.isinf(c.epsilon) else history_epsilon(hist, spent.delta) if hist else 0.0
    return out


def _close_enough(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= _RTOL * max(abs(a), abs(b))


def _check(published: PrivacySpent | None, recomputed: PrivacySpent | None) -> tuple[dict[str, Any], bool]:
    pub = {c.client_id: c.epsilon for c in published.clients} if published is not None else {}
    rec = {c.client_id: c.epsilon for c in recomputed.clients} if recomputed is not None else {}
    hist = _from_history(published) if published is not None else {}
    ok = all(pub.get(cid, 0.0) >= eps * (1 - _RTOL) for cid, eps in rec.items())
    ok = ok and all(_close_enough(hist[cid], eps) for cid, eps in pub.items())
    return {
        "published": pub,
        "recomputed": rec,
        "from_history": hist,
        "epsilon": published.epsilon if published is not None else 0.0,
        "delta": published.delta if published is not None else 0.0,
        "mechanism": published.mechanism if published is not None else "",
    }, ok


def privacy_report(
    model_name: str,
    announcements: Iterable[RoundAnnouncement],
    closes: Iterable[RoundClose],
    versions: Iterable[ModelVersion],
) -> dict[str, Any]:
    """See the module docstring; returns ``{"model", "versions": [...], "ok"}``."""
    anns = {a.round_id: a for a in announcements if a.model_name == model_name}
    closed = {c.round_id: c for c in closes if c.model_name == model_name}
    for c in closed.values():
        anns.setdefault(c.round_id, c.announcement)
    out: list[dict[str, Any]] = []
    all_ok = True
    ledger, charged = PrivacyLedger(), 0
    for mv in sorted((v for v in versions if v.model_name == model_name), key=lambda v: v.version):
        for r in sorted(closed):
            if charged < r <= mv.round_id and r in anns:
                ledger.charge(anns[r], [c.client_id for c in closed[r].contributors], {})
                charged = r
        record, ok_record = _check(mv.privacy, ledger.record_privacy())
        sums, ok_sums = _check(mv.central_privacy if mv.HasField("central_privacy") else None, ledger.sum_privacy())
        ok = ok_record and ok_sums
        all_ok = all_ok and ok
        out.append({"version": mv.version, "round": mv.round_id, "record_level": record, "sum_noise": sums, "ok": ok})
    return {"model": model_name, "versions": out, "ok": all_ok}
