"""Per (producer, stream) accounting of an audit replay: what a person reading the report needs to see.

First/last verified seq, the sequence numbers missing between them, the first bad record with its reason, and
a timeline of outcomes over the log's own timestamps. Everything here is pure: the replay feeds it records."""

from __future__ import annotations

import enum
import itertools
from array import array
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Mark", "StreamLedger", "StreamSummary"]

#: Records whose producer cannot be read (not even a parsable envelope) are kept under this key.
UNATTRIBUTED = ("", "")


class Mark(enum.IntEnum):
    """A record's outcome as the timeline shows it."""

    VERIFIED = 0
    DUPLICATE = 1
    BAD = 2


@dataclass
class StreamSummary:
    producer_id: str
    stream: str
    records: int = 0
    verified: int = 0
    duplicates: int = 0
    bad: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    first_bad: dict[str, Any] | None = None
    #: Envelope seqs whose signature held, in log order (the gaps are computed from them).
    _seqs: array[int] = field(default_factory=lambda: array("Q"), repr=False)
    #: (Kafka timestamp ms, Mark) per record, for the timeline.
    _times: array[int] = field(default_factory=lambda: array("q"), repr=False)
    _marks: bytearray = field(default_factory=bytearray, repr=False)

    def gaps(self, limit: int = 50) -> list[tuple[int, int]]:
        """Inclusive ranges of seqs missing between the first and last authentic envelope (at most ``limit``)."""
        seen = sorted(set(self._seqs))
        out: list[tuple[int, int]] = []
        for a, b in itertools.pairwise(seen):
            if b > a + 1:
                out.append((a + 1, b - 1))
                if len(out) >= limit:
                    break
        return out

    def missing(self) -> int:
        """How many seqs are missing between the first and last authentic envelope."""
        seen = sorted(set(self._seqs))
        return (seen[-1] - seen[0] + 1 - len(seen)) if seen else 0

    @property
    def chain_ok(self) -> bool:
        return self.bad == 0 and self.missing() == 0

    def timeline(self, bins: int, start_ms: int, end_ms: int) -> list[tuple[int, int, int]]:
        """(verified, duplicate, bad) counts in ``bins`` equal slices of ``[start_ms, end_ms]``."""
        out = [[0, 0, 0] for _ in range(bins)]
        span = max(1, end_ms - start_ms)
        for t, mark in zip(self._times, self._marks, strict=True):
            i = min(bins - 1, max(0, (t - start_ms) * bins // span))
            out[i][mark] += 1
        return [(v, d, b) for v, d, b in out]

    def time_range(self) -> tuple[int, int] | None:
        return (min(self._times), max(self._times)) if self._times else None

    def to_json(self) -> dict[str, Any]:
        return {
            "producer_id": self.producer_id,
            "stream": self.stream,
            "records": self.records,
            "verified": self.verified,
            "duplicates": self.duplicates,
            "bad": self.bad,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "missing_seqs": self.missing(),
            "gaps": [list(g) for g in self.gaps()],
            "chain_ok": self.chain_ok,
            "first_bad": self.first_bad,
        }


class StreamLedger:
    """Collects a ``StreamSummary`` per (producer_id, stream) as the replay checks each record."""

    def __init__(self) -> None:
        self.streams: dict[tuple[str, str], StreamSummary] = {}

    def _summary(self, key: tuple[str, str]) -> StreamSummary:
        found = self.streams.get(key)
        if found is None:
            found = self.streams[key] = StreamSummary(producer_id=key[0], stream=key[1])
        return found

    def observe(
        self,
        *,
        partition: int,
        offset: int,
        timestamp_ms: int,
        producer_id: str,
        stream: str,
        seq: int,
        mark: Mark,
        authentic: bool,
        reason: str = "",
        detail: str = "",
    ) -> None:
        """Record one record's outcome. ``authentic``: its signature held (its seq counts for the gaps)."""
        s = self._summary((producer_id, stream) if producer_id else UNATTRIBUTED)
        s.records += 1
        s._times.append(timestamp_ms)
        s._marks.append(mark)
        if authentic and seq > 0:
            s._seqs.append(seq)
        if mark is Mark.VERIFIED:
            s.verified += 1
            s.first_seq = seq if s.first_seq is None else min(s.first_seq, seq)
            s.last_seq = seq if s.last_seq is None else max(s.last_seq, seq)
        elif mark is Mark.DUPLICATE:
            s.duplicates += 1
        else:
            s.bad += 1
            if s.first_bad is None or (partition, offset) < (s.first_bad["partition"], s.first_bad["offset"]):
                s.first_bad = {
                    "partition": partition,
                    "offset": offset,
                    "seq": seq,
                    "reason": reason,
                    "detail": detail,
                }

    def summaries(self) -> list[StreamSummary]:
        """Broken chains first, then by producer and stream."""
        return sorted(self.streams.values(), key=lambda s: (s.chain_ok, s.producer_id, s.stream))

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.summaries()]
