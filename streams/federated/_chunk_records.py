"""Which records each partial chunked payload arrived in, so that one given up on can be dead-lettered.

``streams.Reassembler`` holds only the chunks' data; when it gives an incomplete payload up (expired or evicted)
it calls its ``on_incomplete`` hook. An FL role that reassembles chunked messages (a client reading model
versions, the coordinator reading its own) notes each chunk's record here and passes :meth:`on_incomplete` as
that hook; :meth:`given_up` then hands back the records to dead-letter, with the reason's detail. Pure
bookkeeping, generic in the record type: nothing here touches Kafka.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ChunkRecords", "LostPayload"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class LostPayload(Generic[R]):
    """An incomplete payload given up on: who sent its chunks, their records, and why it was given up."""

    producer_id: str
    records: tuple[R, ...]
    detail: str


class ChunkRecords(Generic[R]):
    """See the module docstring. At most ``max_partials`` payloads are tracked (the oldest is forgotten)."""

    def __init__(self, what: str, *, max_partials: int = 4096) -> None:
        self._what = what
        self._max = max_partials
        self._records: OrderedDict[bytes, tuple[str, list[R]]] = OrderedDict()
        self._lost: list[LostPayload[R]] = []

    def note(self, payload_id: bytes, producer_id: str, record: R) -> None:
        """A chunk of ``payload_id`` arrived in ``record``."""
        self._records.setdefault(bytes(payload_id), (producer_id, []))[1].append(record)
        while len(self._records) > self._max:
            self._records.popitem(last=False)

    def done(self, payload_id: bytes) -> None:
        """``payload_id`` was reassembled (or refused on its own): forget its records."""
        self._records.pop(bytes(payload_id), None)

    def on_incomplete(self, payload_id: bytes, held: int, count: int, why: str) -> None:
        """The ``Reassembler``'s hook: ``payload_id`` was given up with ``held`` of ``count`` chunks."""
        producer, records = self._records.pop(bytes(payload_id), ("", []))
        detail = f"incomplete {self._what} {bytes(payload_id).hex()[:16]}: {held} of {count} chunks, given up ({why})"
        self._lost.append(LostPayload(producer, tuple(records), detail))

    def given_up(self) -> list[LostPayload[R]]:
        """The payloads given up on since the last call."""
        out, self._lost = self._lost, []
        return out
