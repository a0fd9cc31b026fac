"""Per-producer sequence and hash-chain checks: the dedupe every consumer does on (producer_id, seq)."""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass, field

from schemas import MedicalRecord, RejectReason
from streams._envelope import GENESIS_HASH
from streams._errors import EnvelopeRejected

__all__ = ["ChainTracker", "ChainVerdict"]


class ChainVerdict(enum.Enum):
    ACCEPT = "accept"
    #: The same envelope again (at-least-once delivery): drop it quietly, count it.
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class _Producer:
    last_seq: int
    last_hash: bytes
    recent: OrderedDict[int, bytes] = field(default_factory=OrderedDict)


class ChainTracker:
    """Tracks each producer's last accepted ``seq`` and envelope hash.

    Rules, checked in order for an envelope with a valid signature:

    Chains are per (producer_id, stream): a producer writes one chain per topic it publishes to.

    * first envelope seen from a producer in a stream: accepted as the baseline (a consumer may start mid-stream),
      unless ``strict_start`` (reading from the log's first offset), where it must be ``seq == 1``;
      ``seq == 1`` must chain from the genesis hash;
    * ``seq <= last``: a byte-identical envelope seen recently is a DUPLICATE; anything else is
      rejected as REPLAYED_SEQ (an old sequence number with different content);
    * ``seq > last + 1``: rejected as SEQ_GAP (producers send in order, so a gap is a loss upstream);
    * ``prev_hash`` must equal the hash of envelope ``last``: otherwise BROKEN_CHAIN.

    ``check`` does not change state; ``accept`` records an envelope once the caller has taken it.
    """

    def __init__(self, window: int = 4096, *, strict_start: bool = False) -> None:
        self._window = window
        #: When the reader starts at the very beginning of the log, a first envelope must be seq 1.
        self._strict_start = strict_start
        self._producers: dict[tuple[str, str], _Producer] = {}

    def check(self, rec: MedicalRecord, digest: bytes) -> ChainVerdict:
        st = self._producers.get((rec.producer_id, rec.stream))
        if st is None:
            if rec.seq == 1 and rec.prev_hash != GENESIS_HASH:
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_BROKEN_CHAIN,
                    "seq 1 must chain from genesis",
                    producer_id=rec.producer_id,
                    seq=rec.seq,
                )
            if self._strict_start and rec.seq != 1:
                raise EnvelopeRejected(
                    RejectReason.REJECT_REASON_SEQ_GAP,
                    f"log starts at seq {rec.seq} for this producer",
                    producer_id=rec.producer_id,
                    seq=rec.seq,
                )
            return ChainVerdict.ACCEPT
        if rec.seq <= st.last_seq:
            if st.recent.get(rec.seq) == digest:
                return ChainVerdict.DUPLICATE
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

    def accept(self, rec: MedicalRecord, digest: bytes) -> None:
        st = self._producers.get((rec.producer_id, rec.stream))
        if st is None:
            st = self._producers[(rec.producer_id, rec.stream)] = _Producer(rec.seq, digest)
        else:
            st.last_seq, st.last_hash = rec.seq, digest
        st.recent[rec.seq] = digest
        if len(st.recent) > self._window:
            st.recent.popitem(last=False)

    def last_seq(self, producer_id: str, stream: str = "") -> int:
        st = self._producers.get((producer_id, stream))
        return st.last_seq if st else 0
