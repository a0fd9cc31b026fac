"""Durable chain state: ``(producer, stream) -> (seq, hash)`` kept with the input offsets it reflects.

A consumer that forgets its chains on restart takes the first envelope it sees as a baseline, so an old
envelope replayed while it was down would become the baseline and lock the producer's genuine traffic out.
The store writes the changed chain links and the offsets of the batch that changed them in one SQLite
transaction (fsync'd); on start the consumer restores the links and resumes each partition from the stored
offset, so no record is both reflected in the chain and read again. The gateway writes the same rows inside
its outbox transaction (``write`` takes the caller's connection), making forward + audit + chain + offsets
one atomic step.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from streams._chain import ChainLink, ChainTracker

log = logging.getLogger(__name__)

__all__ = ["ChainStore", "resume_at_stored"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chain_links (
    producer_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    last_hash BLOB NOT NULL,
    last_ts INTEGER NOT NULL,
    source TEXT NOT NULL,
    recent BLOB NOT NULL,
    PRIMARY KEY (producer_id, stream)
);
CREATE TABLE IF NOT EXISTS input_offsets (
    topic TEXT NOT NULL,
    partition INTEGER NOT NULL,
    next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
"""
_RECENT = struct.Struct(">Q32s")
#: Digests kept per link across restarts, so a re-delivered recent envelope is still a duplicate.
RECENT_KEPT = 64


def _pack_recent(recent: OrderedDict[int, bytes]) -> bytes:
    items = list(recent.items())[-RECENT_KEPT:]
    return b"".join(_RECENT.pack(seq, digest) for seq, digest in items)


def _unpack_recent(blob: bytes) -> OrderedDict[int, bytes]:
    out: OrderedDict[int, bytes] = OrderedDict()
    for seq, digest in _RECENT.iter_unpack(blob):
        out[seq] = digest
    return out


class ChainStore:
    """SQLite file of chain links and input offsets (WAL, ``synchronous=FULL``); thread-safe."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self.ensure_schema(self._db)
        self._closed = False

    @staticmethod
    def ensure_schema(db: sqlite3.Connection) -> None:
        """Create the tables in ``db`` (for callers that keep them in their own database)."""
        db.executescript(_SCHEMA)

    @staticmethod
    def read(db: sqlite3.Connection) -> tuple[list[ChainLink], dict[tuple[str, int], int]]:
        """Every stored link and input offset in ``db``."""
        links = [
            ChainLink(pid, stream, seq, bytes(h), ts, source, _unpack_recent(bytes(recent)))
            for pid, stream, seq, h, ts, source, recent in db.execute(
                "SELECT producer_id, stream, last_seq, last_hash, last_ts, source, recent FROM chain_links"
            )
        ]
        offsets = {
            (topic, part): off
            for topic, part, off in db.execute("SELECT topic, partition, next_offset FROM input_offsets")
        }
        return links, offsets

    @staticmethod
    def write(
        db: sqlite3.Connection,
        links: Iterable[ChainLink],
        offsets: Mapping[tuple[str, int], int],
        forgotten: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Upsert ``links`` and ``offsets`` in ``db``; the caller holds the transaction."""
        db.executemany("DELETE FROM chain_links WHERE producer_id = ? AND stream = ?", [tuple(k) for k in forgotten])
        db.executemany(
            "INSERT INTO chain_links (producer_id, stream, last_seq, last_hash, last_ts, source, recent) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(producer_id, stream) DO UPDATE SET "
            "last_seq = excluded.last_seq, last_hash = excluded.last_hash, last_ts = excluded.last_ts, "
            "source = excluded.source, recent = excluded.recent",
            [
                (k.producer_id, k.stream, k.last_seq, k.last_hash, k.last_ts, k.source, _pack_recent(k.recent))
                for k in links
            ],
        )
        db.executemany(
            "INSERT INTO input_offsets (topic, partition, next_offset) VALUES (?, ?, ?) "
            "ON CONFLICT(topic, partition) DO UPDATE SET next_offset = excluded.next_offset",
            [(topic, part, off) for (topic, part), off in offsets.items()],
        )

    def load(self) -> tuple[list[ChainLink], dict[tuple[str, int], int]]:
        with self._lock:
            return self.read(self._db)

    def commit(
        self,
        links: Iterable[ChainLink],
        offsets: Mapping[tuple[str, int], int],
        forgotten: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Persist one batch's chain changes and offsets atomically and durably."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self.write(self._db, links, offsets, forgotten)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._db.close()


async def resume_at_stored(
    consumer: AIOKafkaConsumer,
    assigned: Iterable[TopicPartition],
    stored: Mapping[tuple[str, int], int],
    chain: ChainTracker,
    worker: str,
) -> list[tuple[str, str]]:
    """Start each newly assigned partition right after the last record the stored chain state reflects.

    Where the group has committed past our stored offset (another member processed the partition since), our
    chain links fed from it are stale: they are dropped from ``chain`` and returned (to be deleted from the
    store with the next batch) and the partition starts at the group's offset."""
    forgotten: list[tuple[str, str]] = []
    for tp in assigned:
        offset = stored.get((tp.topic, tp.partition))
        if offset is None:
            continue
        try:
            committed = await consumer.committed(tp)
        except KafkaError:
            committed = None
        if committed is not None and committed > offset:
            gone = chain.forget_source(f"{tp.topic}/{tp.partition}")
            forgotten.extend(gone)
            log.warning(
                "%s: %s[%d] was processed elsewhere up to %d (ours: %d); dropped %d stale chain links",
                worker, tp.topic, tp.partition, committed, offset, len(gone),
            )  # fmt: skip
            continue
        consumer.seek(tp, offset)
    return forgotten
