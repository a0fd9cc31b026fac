"""Split payloads too large for one message into chunks; reassemble them whatever the order or repeats."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from schemas import Chunk, RejectReason
from streams._errors import EnvelopeRejected

__all__ = ["DEFAULT_CHUNK_SIZE", "Reassembler", "split_payload"]

log = logging.getLogger(__name__)

#: Data bytes per chunk: well under the 1 MiB default ``max.message.bytes`` with envelope overhead.
DEFAULT_CHUNK_SIZE = 512 * 1024


def split_payload(
    payload: bytes, *, schema: str, chunk_size: int = DEFAULT_CHUNK_SIZE, payload_id: bytes | None = None
) -> Iterator[Chunk]:
    """Yield the chunks of ``payload`` (at least one, even for an empty payload)."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    pid = payload_id if payload_id is not None else os.urandom(16)
    digest = hashlib.sha256(payload).digest()
    count = max(1, -(-len(payload) // chunk_size))
    for index in range(count):
        yield Chunk(
            payload_id=pid,
            payload_schema=schema,
            index=index,
            count=count,
            total_size=len(payload),
            payload_sha256=digest,
            data=payload[index * chunk_size : (index + 1) * chunk_size],
        )


@dataclass(slots=True)
class _Partial:
    schema: str
    count: int
    total_size: int
    digest: bytes
    first_seen: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


@dataclass(frozen=True, slots=True)
class Assembled:
    payload_id: bytes
    schema: str
    payload: bytes


class Reassembler:
    """Collects chunks by ``payload_id`` and yields each payload once, exactly as it was split.

    Duplicates are ignored; a chunk that contradicts earlier ones (other count, size, digest or data)
    is rejected as CHUNK_INVALID. A payload is released only when every chunk is present and the
    SHA-256 matches; incomplete payloads are dropped after ``ttl_s`` or when ``max_bytes`` is exceeded.
    """

    def __init__(
        self,
        *,
        ttl_s: float = 600.0,
        max_bytes: int = 512 * 1024 * 1024,
        max_done: int = 65536,
        on_incomplete: Callable[[bytes, int, int, str], None] | None = None,
    ) -> None:
        #: Called as ``on_incomplete(payload_id, chunks_held, chunk_count, why)`` for each incomplete payload given
        #: up on, so that a caller holding the chunks' records can dead-letter them.
        self._on_incomplete = on_incomplete
        self._ttl_s = ttl_s
        self._max_bytes = max_bytes
        self._partials: dict[bytes, _Partial] = {}
        self._done: dict[bytes, None] = {}
        self._max_done = max_done
        self._bytes = 0
        #: Incomplete payloads given up on (expired or evicted): never silent, each is logged and counted.
        self.incomplete_dropped = 0

    @property
    def pending(self) -> int:
        return len(self._partials)

    def add(self, chunk: Chunk, *, now: float | None = None) -> Assembled | None:
        now = time.monotonic() if now is None else now
        self._expire(now)
        pid = bytes(chunk.payload_id)
        if pid in self._done:
            return None
        if chunk.count == 0 or chunk.index >= chunk.count or len(chunk.payload_sha256) != 32:
            raise EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, "bad index/count/digest")
        part = self._partials.get(pid)
        if part is None:
            part = self._partials[pid] = _Partial(
                chunk.payload_schema, chunk.count, chunk.total_size, bytes(chunk.payload_sha256), now
            )
        elif (part.count, part.total_size, part.digest, part.schema) != (
            chunk.count,
            chunk.total_size,
            bytes(chunk.payload_sha256),
            chunk.payload_schema,
        ):
            raise EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, "chunk disagrees with its siblings")
        existing = part.parts.get(chunk.index)
        if existing is not None:
            if existing != chunk.data:
                raise EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, "conflicting data for one index")
            return None
        part.parts[chunk.index] = bytes(chunk.data)
        part.size += len(chunk.data)
        self._bytes += len(chunk.data)
        if part.size > part.total_size:
            self._drop(pid)
            raise EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, "chunks exceed the declared size")
        while self._bytes > self._max_bytes and self._partials:
            self._give_up(next(iter(self._partials)), f"over the {self._max_bytes}-byte reassembly limit")
        if len(part.parts) < part.count:
            return None
        payload = b"".join(part.parts[i] for i in range(part.count))
        self._drop(pid)
        if len(payload) != part.total_size or hashlib.sha256(payload).digest() != part.digest:
            raise EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, "reassembled payload digest mismatch")
        self._done[pid] = None
        if len(self._done) > self._max_done:
            self._done.pop(next(iter(self._done)))
        return Assembled(pid, part.schema, payload)

    def _drop(self, pid: bytes) -> None:
        part = self._partials.pop(pid, None)
        if part is not None:
            self._bytes -= part.size

    def _give_up(self, pid: bytes, why: str) -> None:
        part = self._partials.get(pid)
        if part is not None:
            self.incomplete_dropped += 1
            log.warning(
                "incomplete chunked payload %s (%s) dropped: %d of %d chunks after %s",
                pid.hex()[:16],
                part.schema,
                len(part.parts),
                part.count,
                why,
            )
            if self._on_incomplete is not None:
                self._on_incomplete(pid, len(part.parts), part.count, why)
        self._drop(pid)

    def _expire(self, now: float) -> None:
        for pid in [p for p, part in self._partials.items() if now - part.first_seen > self._ttl_s]:
            self._give_up(pid, f"waiting more than {self._ttl_s:g}s")
