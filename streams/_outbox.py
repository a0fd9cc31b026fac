"""A durable outbox: an event is acknowledged locally only once it is on disk, and deleted only after
the broker acknowledged it. Sealing happens inside the same transaction that stores the event and the
producer's chain state, so a crash can neither reuse a sequence number nor skip one."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from google.protobuf.message import Message

from schemas import MedicalRecord
from streams._envelope import BatchItem, ChainState, seal, seal_batch
from streams._keys import DataKey, SigningKey

__all__ = ["Outbox", "OutboxRow", "SealRequest"]

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key BLOB,
    value BLOB NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chains (
    producer_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    seq INTEGER NOT NULL,
    prev_hash BLOB NOT NULL,
    PRIMARY KEY (producer_id, stream)
);
"""


@dataclass(frozen=True, slots=True)
class SealRequest:
    """One event to seal and store: ``message`` goes to ``topic`` under ``key``."""

    topic: str
    key: bytes
    message: Message
    hospital_id: str
    data_key: DataKey | None


@dataclass(frozen=True, slots=True)
class OutboxRow:
    id: int
    topic: str
    key: bytes | None
    value: bytes
    created_ns: int


class Outbox:
    """SQLite-backed (WAL, ``synchronous=FULL``) queue of sealed envelopes and pre-sealed messages.

    Thread-safe: callers on an event loop use ``asyncio.to_thread`` for writes so an fsync never
    stalls the loop.
    """

    def __init__(self, path: Path, *, signing_key: SigningKey | None = None, batch_sign: bool = False) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._signing_key = signing_key
        #: Seal the requests of one ``put`` with one batch signature (a Merkle root; ``seal_batch``).
        self.batch_sign = batch_sign
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._chains = self._load_chains()
        self._count: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        self._closed = False

    def _load_chains(self) -> dict[str, ChainState]:
        if self._signing_key is None:
            return {}
        rows = self._db.execute(
            "SELECT stream, seq, prev_hash FROM chains WHERE producer_id = ?", (self._signing_key.producer_id,)
        ).fetchall()
        return {stream: ChainState(seq, bytes(prev)) for stream, seq, prev in rows}

    def chain_for(self, stream: str) -> ChainState:
        """Where the producer's chain in ``stream`` (a topic) stands: ``seq`` is the last number sealed."""
        return self._chains.get(stream, ChainState())

    def put(
        self,
        requests: Sequence[SealRequest] = (),
        raw: Sequence[tuple[str, bytes, bytes]] = (),
        *,
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> list[int]:
        """Seal ``requests`` (each in the stream of its topic) and store them plus ``raw`` (topic, key, value)
        messages, durably and atomically; returns the sequence numbers assigned to ``requests``. ``also``
        writes more rows (e.g. a consumer's chain state and offsets) inside the same transaction."""
        if requests and self._signing_key is None:
            raise RuntimeError("this outbox has no signing key: it can only carry pre-sealed messages")
        now = time.time_ns()
        with self._lock:
            chains = dict(self._chains)
            rows: list[tuple[str, bytes, bytes, int]] = []
            seqs: list[int] = []
            recs: list[MedicalRecord] = []
            key = self._signing_key
            if key is not None and self.batch_sign:
                items = [BatchItem(req.message, req.topic, req.hospital_id, req.data_key) for req in requests]
                recs, chains = seal_batch(items, signing_key=key, chains=chains, timestamp_ns=now)
            elif key is not None:
                for req in requests:
                    rec, chains[req.topic] = seal(
                        req.message,
                        signing_key=key,
                        chain=chains.get(req.topic, ChainState()),
                        hospital_id=req.hospital_id,
                        data_key=req.data_key,
                        timestamp_ns=now,
                        stream=req.topic,
                    )
                    recs.append(rec)
            for req, rec in zip(requests, recs, strict=True):
                rows.append((req.topic, req.key, rec.SerializeToString(), now))
                seqs.append(rec.seq)
            rows.extend((topic, key, value, now) for topic, key, value in raw)
            changed = {req.topic for req in requests}
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO outbox (topic, key, value, created_ns) VALUES (?, ?, ?, ?)", rows)
                if changed:
                    assert self._signing_key is not None
                    pid = self._signing_key.producer_id
                    self._db.executemany(
                        "INSERT INTO chains (producer_id, stream, seq, prev_hash) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(producer_id, stream) DO UPDATE SET seq = excluded.seq, "
                        "prev_hash = excluded.prev_hash",
                        [(pid, stream, chains[stream].seq, chains[stream].prev_hash) for stream in sorted(changed)],
                    )
                if also is not None:
                    also(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._chains = chains
            self._count += len(rows)
            return seqs

    def query(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the outbox database under its lock (schema set-up, reading stored state)."""
        with self._lock:
            return fn(self._db)

    def pending(self, limit: int = 500) -> list[OutboxRow]:
        """The oldest unsent messages, in the order they were stored."""
        with self._lock:
            cur = self._db.execute("SELECT id, topic, key, value, created_ns FROM outbox ORDER BY id LIMIT ?", (limit,))
            return [OutboxRow(r[0], r[1], r[2], r[3], r[4]) for r in cur.fetchall()]

    def pending_with_depth(self, limit: int = 500) -> tuple[list[OutboxRow], int, float]:
        """``pending(limit)`` plus ``depth()`` in one call (one thread hop for an asyncio sender)."""
        rows = self.pending(limit)
        with self._lock:
            count = self._count
        oldest = rows[0].created_ns if rows else None
        return rows, int(count), (time.time_ns() - oldest) / 1e9 if oldest else 0.0

    def ack(self, ids: Sequence[int]) -> None:
        """Delete messages the broker acknowledged."""
        if not ids:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            cur = self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
            self._db.execute("COMMIT")
            self._count -= max(0, cur.rowcount)

    def depth(self) -> tuple[int, float]:
        """(number of unsent messages, age in seconds of the oldest)."""
        with self._lock:
            # Counted in memory (COUNT(*) would scan the whole queue on every flush); the oldest row is the
            # lowest id, an index lookup.
            count = self._count
            row = self._db.execute("SELECT created_ns FROM outbox ORDER BY id LIMIT 1").fetchone() if count else None
            oldest = row[0] if row else None
        return int(count), (time.time_ns() - oldest) / 1e9 if oldest else 0.0

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()
