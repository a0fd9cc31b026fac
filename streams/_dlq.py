"""Dead letters: a rejected message is kept with the reason, bounded in size, counted, and sent in batches.

A dead letter always fits in one produce request: above ``max_value_bytes`` it keeps the first bytes of the
original plus its full length and SHA-256, and every copied identifier is cut to a fixed length. Letters are
queued while a batch is processed and sent together before the batch's offsets are committed, so a hostile
flood costs one round trip per fetch batch, not one per record. A broker that is down is waited for (the
batch is not committed, nothing is lost); a letter the broker refuses for good (not retriable) is written to
a local spool file and counted instead of being retried forever.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from schemas import DeadLetter
from streams._catalog import DLQ
from streams._errors import EnvelopeRejected
from streams._metrics import BusMetrics
from streams._sender import make_producer
from streams._settings import BusSettings

__all__ = ["DeadLetterLimits", "DeadLetterSink", "RejectLog", "dead_letter_for"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeadLetterLimits:
    #: Bytes of the original value kept; the rest is summarised by length + SHA-256.
    max_value_bytes: int = 64 * 1024
    max_key_bytes: int = 1024
    max_id_chars: int = 256
    max_detail_chars: int = 2048


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"…[{len(text) - limit} more chars]"


def dead_letter_for(
    record: ConsumerRecord[bytes, bytes],
    exc: EnvelopeRejected,
    worker: str,
    limits: DeadLetterLimits | None = None,
) -> tuple[str, bytes, bytes]:
    """(topic, key, value) of the DLQ message for ``record``; keyed by source topic as the catalog says."""
    lim = limits or DeadLetterLimits()
    value = record.value or b""
    key = record.key or b""
    truncated = len(value) > lim.max_value_bytes or len(key) > lim.max_key_bytes
    letter = DeadLetter(
        source_topic=_cut(record.topic, lim.max_id_chars),
        source_partition=record.partition,
        source_offset=record.offset,
        key=key[: lim.max_key_bytes],
        value=value[: lim.max_value_bytes],
        reason=exc.reason,  # type: ignore[arg-type]
        detail=_cut(exc.detail, lim.max_detail_chars),
        worker=_cut(worker, lim.max_id_chars),
        rejected_at=time.time_ns(),
        producer_id=_cut(exc.producer_id, lim.max_id_chars),
        seq=exc.seq,
        value_length=len(value),
        value_sha256=hashlib.sha256(value).digest(),
        truncated=truncated,
    )
    return DLQ.name, record.topic.encode()[: lim.max_key_bytes], letter.SerializeToString()


class RejectLog:
    """Logs rejections without letting a flood of them cost more than the rejections themselves: the first of
    each (topic, reason) in a window is logged at INFO with its offset and how many were suppressed since; the
    rest at DEBUG. Every rejection is still counted in the metric and kept in its dead letter."""

    def __init__(self, worker: str, *, window_s: float = 10.0) -> None:
        self._worker = worker
        self._window_s = window_s
        self._last: dict[tuple[str, int], tuple[float, int]] = {}

    def __call__(self, topic: str, partition: int, offset: int, exc: EnvelopeRejected) -> None:
        now = time.monotonic()
        key = (topic, exc.reason)
        last, suppressed = self._last.get(key, (-1e18, 0))
        if now - last >= self._window_s:
            self._last[key] = (now, 0)
            more = f" ({suppressed} more like it since the last report)" if suppressed else ""
            log.info("%s: rejected %s[%d]@%d: %s%s", self._worker, topic, partition, offset, str(exc)[:300], more)
        else:
            self._last[key] = (last, suppressed + 1)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("%s: rejected %s[%d]@%d: %s", self._worker, topic, partition, offset, str(exc)[:300])


class DeadLetterSink:
    """Queues dead letters and sends them in one go (``flush``) before the caller commits its offsets."""

    def __init__(
        self,
        settings: BusSettings,
        metrics: BusMetrics,
        *,
        worker: str,
        limits: DeadLetterLimits | None = None,
        spool: Path | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        self._worker = worker
        self._limits = limits or DeadLetterLimits()
        self._spool = spool or settings.state_dir / "dlq-spool" / f"{worker}.jsonl"
        self._producer: AIOKafkaProducer | None = None
        self._queued: list[tuple[str, bytes, bytes, str]] = []
        self.sent = 0
        self.spooled = 0

    def add(self, record: ConsumerRecord[bytes, bytes], exc: EnvelopeRejected) -> None:
        """Queue the dead letter of ``record`` (sent by the next ``flush``)."""
        topic, key, value = dead_letter_for(record, exc, self._worker, self._limits)
        self._queued.append((topic, key, value, record.topic))

    def __len__(self) -> int:
        return len(self._queued)

    async def _ensure(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self._settings)
            try:
                await producer.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def flush(self, stopping: asyncio.Event | None = None) -> None:
        """Send everything queued. Retriable failures (broker down) are retried with backoff until they go
        through or ``stopping`` is set (then it raises, and the caller must not commit); refused letters
        are spooled to disk."""
        backoff = 0.05
        while self._queued:
            try:
                producer = await self._ensure()
                futures: list[Any] = []
                for topic, key, value, _ in self._queued:
                    try:
                        futures.append(await producer.send(topic, value, key=key))
                    except KafkaError as exc:
                        if getattr(exc, "retriable", False):
                            raise
                        futures.append(exc)
                results = await asyncio.gather(
                    *(f for f in futures if not isinstance(f, BaseException)), return_exceptions=True
                )
            except (KafkaError, TimeoutError, OSError) as exc:
                if stopping is not None and stopping.is_set():
                    raise
                log.warning("%s: dead letters not sent (%s); retrying in %.2fs", self._worker, exc, backoff)
                await self._drop()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            it = iter(results)
            retry: list[tuple[str, bytes, bytes, str]] = []
            for item, fut in zip(self._queued, futures, strict=True):
                outcome = fut if isinstance(fut, BaseException) else next(it)
                if not isinstance(outcome, BaseException):
                    self.sent += 1
                    self._metrics.event_out(item[0])
                elif isinstance(outcome, KafkaError) and getattr(outcome, "retriable", False):
                    retry.append(item)
                else:
                    self._spool_one(item, outcome)
            self._queued = retry
            if retry:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    def _spool_one(self, item: tuple[str, bytes, bytes, str], exc: BaseException) -> None:
        topic, key, value, source = item
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        line = {
            "topic": topic,
            "key": base64.b64encode(key).decode(),
            "value": base64.b64encode(value).decode(),
            "error": f"{type(exc).__name__}: {exc}"[:500],
        }
        with self._spool.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")
        self.spooled += 1
        self._metrics.dlq_spooled(source)
        log.error("%s: broker refused a dead letter for %s (%s); spooled to %s", self._worker, source, exc, self._spool)

    async def _drop(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=10)

    async def stop(self) -> None:
        await self._drop()
