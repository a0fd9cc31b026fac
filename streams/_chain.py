"""Per-producer sequence and hash-chain checks: the dedupe every consumer does on (producer_id, seq)."""

from __future__ import annotations

import enum
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas import MedicalRecord, RejectReason
from streams._envelope import GENESIS_HASH
from streams._errors import EnvelopeRejected

__all__ = ["ChainLink", "ChainTracker", "ChainVerdict"]


class ChainVerdict(enum.Enum):
    ACCEPT = "accept"
    #: The same envelope again (at-least-once delivery): drop it quietly, count it.
    DUPLICATE = "duplicate"
    #: A genuine new chain from a producer that lost its state (seq 1 from genesis, signed later than
    #: anything accepted from it): accepted, and an operator-visible event (metric, log, audit flag).
    RESET = "reset"


@dataclass(slots=True)
class ChainLink:
    """Where one ``(producer_id, stream)`` chain stands, as persisted by ``ChainStore``."""

    producer_id: str
    stream: str
    last_seq: int
    last_hash: bytes
    #: Signed timestamp of the last accepted envelope: a reset must be newer than it.
    last_ts: int = 0
    #: ``topic/partition`` the last envelope was read from, so a partition handed to another consumer
    #: can drop the links it no longer owns.
    source: str = ""
    recent: OrderedDict[int, bytes] = field(default_factory=OrderedDict)


class ChainTracker:
    """Tracks each producer's last accepted ``seq`` and envelope hash.

    Chains are per (producer_id, stream): a producer writes one chain per topic it publishes to.
    Rules, checked in order for an envelope with a valid signature:

    * first envelope seen from a producer in a stream: accepted as the baseline (a consumer may start mid-stream),
      unless ``strict_start`` (reading from the log's first offset), where it must be ``seq == 1``;
      ``seq == 1`` must chain from the genesis hash;
    * ``seq == 1`` from genesis, signed later than the last accepted envelope, when the chain is further on: RESET
      (the producer lost its state and started over; a replayed old seq 1 is older and stays REPLAYED_SEQ);
    * ``seq <= last``: a byte-identical envelope seen recently is a DUPLICATE; anything else is
      rejected as REPLAYED_SEQ (an old sequence number with different content);
    * ``seq > last + 1``: rejected as SEQ_GAP (producers send in order, so a gap is a loss upstream);
    * ``prev_hash`` must equal the hash of envelope ``last``: otherwise BROKEN_CHAIN.

    ``check`` does not change state; ``accept`` records an envelope once the caller has taken it. Links that
    changed since the last ``take_dirty`` are what a ``ChainStore`` persists with the input offsets.
    """

    def __init__(self, window: int = 4096, *, strict_start: bool = False) -> None:
        self._window = window
        #: When the reader starts at the very beginning of the log, a first envelope must be seq 1.
        self._strict_start = strict_start
        self._producers: dict[tuple[str, str], ChainLink] = {}
        self._dirty: set[tuple[str, str]] = set()

    def check(self, rec: MedicalRecord, digest: bytes) -> ChainVerdict:
        st = self._producers.get((rec.producer_id, rec.stream))
        if rec.seq == 1 and rec.prev_hash != GENESIS_HASH:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_BROKEN_CHAIN,
                "seq 1 must chain from genesis",
                producer_id=rec.producer_id,
                seq=rec.seq,
            )
        if st is None:
            if self._strict_start and rec.seq != 1:
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_SEQ_GAP,
                    f"log starts at seq {rec.seq} for this producer",
                    producer_id=rec.producer_id,
                    seq=rec.seq,
                )
            return ChainVerdict.ACCEPT
        if rec.seq <= st.last_seq:
            if st.recent.get(rec.seq) == digest or (rec.seq == st.last_seq and digest == st.last_hash):
                return ChainVerdict.DUPLICATE
            if rec.seq == 1 and rec.timestamp > st.last_ts:
                return ChainVerdict.RESET
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_REPLAYED_SEQ,
                f"seq {rec.seq} <= last accepted {st.last_seq}",
                producer_id=rec.producer_id,
                seq=rec.seq,
            )
        if rec.seq > st.last_seq + 1:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_SEQ_GAP,
                f"expected seq {st.last_seq + 1}, got {rec.seq}",
                producer_id=rec.producer_id,
                seq=rec.seq,
            )
        if rec.prev_hash != st.last_hash:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_BROKEN_CHAIN,
                f"prev_hash does not match seq {st.last_seq}",
                producer_id=rec.producer_id,
                seq=rec.seq,
            )
        return ChainVerdict.ACCEPT

    def accept(self, rec: MedicalRecord, digest: bytes, *, source: str = "") -> None:
        key = (rec.producer_id, rec.stream)
        st = self._producers.get(key)
        if st is None or rec.seq == 1:
            st = self._producers[key] = ChainLink(rec.producer_id, rec.stream, rec.seq, digest)
        else:
            st.last_seq, st.last_hash = rec.seq, digest
        st.last_ts = max(st.last_ts, rec.timestamp)
        st.source = source
        st.recent[rec.seq] = digest
        if len(st.recent) > self._window:
            st.recent.popitem(last=False)
        self._dirty.add(key)

    def last_seq(self, producer_id: str, stream: str = "") -> int:
        st = self._producers.get((producer_id, stream))
        return st.last_seq if st else 0

    def take_dirty(self) -> list[ChainLink]:
        """The links changed since the previous call (for persisting), and forget that they changed."""
        dirty = [self._producers[k] for k in self._dirty if k in self._producers]
        self._dirty.clear()
        return dirty

    def restore(self, links: Iterable[ChainLink]) -> None:
        """Load persisted links (at start, before any record)."""
        for link in links:
            self._producers[(link.producer_id, link.stream)] = link

    def forget_source(self, source: str) -> list[tuple[str, str]]:
        """Drop every link last fed from ``source`` (a partition another consumer has moved past)."""
        gone = [k for k, link in self._producers.items() if link.source == source]
        for k in gone:
            del self._producers[k]
            self._dirty.discard(k)
        return gone

    def __len__(self) -> int:
        return len(self._producers)
