"""A client's own state on disk: what it must not forget across a restart.

The error-feedback residual, the last round it sent an update for, its sent-but-not-yet-applied rounds and
its fold buffer are written atomically (``.npz``, no pickle) *before* an update goes into the outbox; which
rounds were applied it re-learns from the log (the model versions name their contributors).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.federated._client_core import ClientCore, _Submitted
from streams.federated import ErrorFeedback

__all__ = ["load_client_state", "save_client_state"]


def save_client_state(core: ClientCore, path: Path) -> None:
    """Write ``core``'s durable state to ``path`` (atomically, fsync'd)."""
    arrays: dict[str, Any] = {}
    if core.ef is not None:
        arrays["residual"] = core.ef.residual
    meta = {
        "client_id": core.client_id,
        "last_round": core.last_round,
        "late_rounds": core.late_rounds,
        "submitted": {str(r): [s.fold, s.alpha, s.max_staleness] for r, s in core.submitted.items()},
        "stale": [[r, alpha, max_staleness] for r, _, alpha, max_staleness in core.stale],
    }
    for r, s in core.submitted.items():
        arrays[f"submitted_{r}"] = s.taken
    for i, (_, taken, _, _) in enumerate(core.stale):
        arrays[f"stale_{i}"] = taken
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, meta=np.array(json.dumps(meta)), **arrays)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_client_state(core: ClientCore, path: Path) -> bool:
    """Restore what :func:`save_client_state` wrote; False when there is nothing (a fresh client)."""
    if not path.exists():
        return False
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta["client_id"] != core.client_id:
            raise ValueError(f"{path} belongs to {meta['client_id']}, not {core.client_id}")
        if "residual" in data:
            core.ef = ErrorFeedback(int(data["residual"].size))
            core.ef.record_sent(data["residual"], np.empty(0, dtype=np.int64))
        core.last_round = int(meta["last_round"])
        core.late_rounds = [int(r) for r in meta["late_rounds"]]
        core.submitted = {
            int(r): _Submitted(np.array(data[f"submitted_{r}"]), bool(f), float(a), int(m))
            for r, (f, a, m) in meta["submitted"].items()
        }
        core.stale = [
            (int(r), np.array(data[f"stale_{i}"]), float(a), int(m)) for i, (r, a, m) in enumerate(meta["stale"])
        ]
    return True
