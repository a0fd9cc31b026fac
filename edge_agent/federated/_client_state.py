"""A client's own state on disk: what it must not forget across a restart.

The error-feedback residual, the last round it sent an update for, its sent-but-not-yet-applied rounds, its
fold buffer, whether it sent its statistics-round moments, and its privacy accountant (``.npz`` bytes, no
pickle) are stored in the client's outbox database in the SAME transaction as the update's envelopes
(:func:`put_with_state`): after a crash either both are on disk or neither is, so a round can neither be marked
sent without its update nor be sent twice. Which rounds were applied it re-learns from the log (the model
versions name their contributors).
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.federated._client_core import ClientCore, _Submitted
from streams import Outbox, SealRequest
from streams.federated import ErrorFeedback

__all__ = ["client_state_bytes", "load_client_state", "load_outbox_state", "put_with_state", "save_client_state"]

_TABLE = "CREATE TABLE IF NOT EXISTS fl_client_state (client_id TEXT PRIMARY KEY, value BLOB NOT NULL)"


def put_with_state(outbox: Outbox, core: ClientCore, requests: Sequence[SealRequest]) -> None:
    """Store ``requests`` and ``core``'s state in one durable transaction of ``outbox``."""
    blob = client_state_bytes(core)

    def also(db: sqlite3.Connection) -> None:
        db.execute(_TABLE)
        db.execute("INSERT OR REPLACE INTO fl_client_state (client_id, value) VALUES (?, ?)", (core.client_id, blob))

    outbox.put(requests, also=also)


def load_outbox_state(core: ClientCore, outbox: Outbox) -> bool:
    """Restore what :func:`put_with_state` stored; False when there is nothing (a fresh client)."""

    def read(db: sqlite3.Connection) -> bytes | None:
        db.execute(_TABLE)
        row = db.execute("SELECT value FROM fl_client_state WHERE client_id = ?", (core.client_id,)).fetchone()
        return bytes(row[0]) if row is not None else None

    blob = outbox.query(read)
    if blob is None:
        return False
    _restore(core, blob)
    return True


def client_state_bytes(core: ClientCore) -> bytes:
    """``core``'s durable state as ``.npz`` bytes."""
    arrays: dict[str, Any] = {}
    if core.ef is not None:
        arrays["residual"] = core.ef.residual
    meta = {
        "client_id": core.client_id,
        "last_round": core.last_round,
        "late_rounds": core.late_rounds,
        "submitted": {str(r): [s.fold, s.alpha, s.max_staleness] for r, s in core.submitted.items()},
        "stale": [[r, alpha, max_staleness] for r, _, alpha, max_staleness in core.stale],
        "history": [list(h) for h in core.history],
        "rounds_trained": core.rounds_trained,
        "delta": core.delta,
        "stats_sent": core.stats_sent,
    }
    for r, s in core.submitted.items():
        arrays[f"submitted_{r}"] = s.taken
    for i, (_, taken, _, _) in enumerate(core.stale):
        arrays[f"stale_{i}"] = taken
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def save_client_state(core: ClientCore, path: Path) -> None:
    """Write ``core``'s durable state to a file of its own (atomically, fsync'd)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(client_state_bytes(core))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_client_state(core: ClientCore, path: Path) -> bool:
    """Restore what :func:`save_client_state` wrote; False when there is nothing (a fresh client)."""
    if not path.exists():
        return False
    _restore(core, path.read_bytes())
    return True


def _restore(core: ClientCore, blob: bytes) -> None:
    with np.load(io.BytesIO(blob), allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta["client_id"] != core.client_id:
            raise ValueError(f"saved state belongs to {meta['client_id']}, not {core.client_id}")
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
        core.delta = float(meta.get("delta", 0.0))
        core.stats_sent = bool(meta.get("stats_sent", False))
        core.restore_history([tuple(h) for h in meta.get("history", [])], int(meta.get("rounds_trained", 0)))
