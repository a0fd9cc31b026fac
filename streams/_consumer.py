"""The consumer every worker uses: verify -> dedupe on (producer_id, seq) -> decrypt/decode -> handle.

Bad input never crashes a worker: each rejection goes to ``dlq.v1`` with its reason and increments
``medkiosk_rejects_total``. Offsets are committed only after a batch's effects (handler output and
dead letters) are durable, so a restart re-reads rather than loses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from google.protobuf.message import Message

from schemas import MedicalRecord, RejectReason
from streams._chain import ChainTracker, ChainVerdict
from streams._dlq import dead_letter_for
from streams._envelope import decode_payload, decrypt, envelope_hash, parse, verify_signature
from streams._errors import EnvelopeRejected
from streams._keys import Keyring
from streams._metrics import BusMetrics
from streams._sender import make_producer
from streams._settings import BusSettings

__all__ = ["ConsumerConfig", "EnvelopeConsumer", "Retryable", "VerifiedEvent", "run_consumer"]

log = logging.getLogger(__name__)


class Retryable(Exception):
    """Raised by a handler when a dependency (usually the broker) is unavailable: the record is
    retried with backoff instead of being dead-lettered."""


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    record: ConsumerRecord[bytes, bytes]
    envelope: MedicalRecord
    digest: bytes
    #: The decoded inner message, or ``None`` for a consumer that does not decrypt (the gateway).
    message: Message | None

    @property
    def e2e_seconds(self) -> float:
        return (time.time_ns() - self.envelope.timestamp) / 1e9


Handler = Callable[[VerifiedEvent], Awaitable[None]]
BatchDone = Callable[[], Awaitable[None]]


@dataclass(kw_only=True)
class ConsumerConfig:
    topics: Sequence[str]
    group_id: str
    #: Name in metrics and dead letters.
    worker: str
    #: Decrypt and decode the payload (needs the data keys); ``False`` verifies only.
    decrypt: bool = True
    auto_offset_reset: str = "earliest"
    max_records: int = 500
    poll_timeout_ms: int = 200
    extra: dict[str, Any] = field(default_factory=dict)


class EnvelopeConsumer:
    """Runs ``handler`` once per accepted envelope; counts, dead-letters and commits around it."""

    def __init__(
        self,
        config: ConsumerConfig,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        handler: Handler,
        *,
        on_batch_done: BatchDone | None = None,
    ) -> None:
        self.config = config
        self._settings = settings
        self._keyring = keyring
        self._metrics = metrics
        self._handler = handler
        self._on_batch_done = on_batch_done
        self.chain = ChainTracker()
        self._consumer: AIOKafkaConsumer | None = None
        self._dlq: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.assigned = asyncio.Event()
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        cfg = self.config
        consumer = AIOKafkaConsumer(
            *cfg.topics,
            **self._settings.kafka_kwargs(),
            client_id=f"{self._settings.client_id}-{cfg.worker}",
            group_id=cfg.group_id,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
            **cfg.extra,
        )
        await consumer.start()
        self._consumer = consumer
        self._metrics.add_lag_source(self._lag)

    def _lag(self) -> list[tuple[str, int, int]]:
        consumer = self._consumer
        if consumer is None:
            return []
        out = []
        for tp, position in list(self._positions.items()):
            high = consumer.highwater(tp)
            if high is not None:
                out.append((tp.topic, tp.partition, max(0, high - position)))
        return out

    def request_stop(self) -> None:
        """Make ``run()`` return after the batch in hand is processed and committed."""
        self._stopping.set()

    async def stop(self) -> None:
        self._stopping.set()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=10)
        dlq, self._dlq = self._dlq, None
        if dlq is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(dlq.stop(), timeout=10)

    async def run(self) -> None:
        """Consume until ``stop()``; never raises on bad input."""
        assert self._consumer is not None, "start() first"
        consumer = self._consumer
        while not self._stopping.is_set():
            try:
                batches = await consumer.getmany(
                    timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_records
                )
            except KafkaError as exc:
                log.warning("%s: fetch failed (%s); retrying", self.config.worker, exc)
                await asyncio.sleep(0.5)
                continue
            if consumer.assignment():
                self.assigned.set()
            if not batches:
                continue
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            for tp, records in batches.items():
                for record in records:
                    await self._process(record)
                    offsets[tp] = OffsetAndMetadata(record.offset + 1, "")
                    self._positions[tp] = record.offset + 1
            if self._on_batch_done is not None:
                await self._retry(self._on_batch_done, "batch flush")
            await self._commit(consumer, offsets)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # Not fatal: the records are re-read after a restart and deduplicated.
            log.warning("%s: offset commit failed (%s)", self.config.worker, exc)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        topic = record.topic
        try:
            rec = parse(record.value or b"")
            verify_signature(rec, self._keyring)
            digest = envelope_hash(rec)
            if self.chain.check(rec, digest) is ChainVerdict.DUPLICATE:
                self.duplicates += 1
                self._metrics.duplicate(topic)
                return
            # Authentic and in sequence: from here on the chain advances even if the payload is bad.
            self.chain.accept(rec, digest)
            message = decode_payload(rec, decrypt(rec, self._keyring)) if self.config.decrypt else None
        except EnvelopeRejected as exc:
            await self._reject(record, exc)
            return
        event = VerifiedEvent(record, rec, digest, message)
        try:
            await self._retry(lambda: self._handler(event), f"handler for {topic}@{record.offset}")
        except EnvelopeRejected as exc:
            await self._reject(record, exc)
            return
        except Exception as exc:
            log.exception("%s: handler failed on %s@%d", self.config.worker, topic, record.offset)
            await self._reject(
                record,
                EnvelopeRejected(
                    RejectReason.REJECT_REASON_HANDLER_FAILED,
                    f"{type(exc).__name__}: {exc}",
                    producer_id=rec.producer_id,
                    seq=rec.seq,
                ),
            )
            return
        self.accepted += 1
        self._metrics.event_in(topic)
        self._metrics.latency(topic, event.e2e_seconds)

    async def _retry(self, action: Callable[[], Awaitable[None]], what: str) -> None:
        backoff = 0.05
        while True:
            try:
                await action()
                return
            except (Retryable, KafkaError, TimeoutError) as exc:
                if self._stopping.is_set():
                    raise
                log.warning("%s: %s failed (%s); retrying in %.2fs", self.config.worker, what, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)

    async def _reject(self, record: ConsumerRecord[bytes, bytes], exc: EnvelopeRejected) -> None:
        self.rejected += 1
        self._metrics.reject(record.topic, exc.label)
        log.info("%s: rejected %s@%d: %s", self.config.worker, record.topic, record.offset, exc)
        topic, key, value = dead_letter_for(record, exc, self.config.worker)

        async def send() -> None:
            if self._dlq is None:
                producer = make_producer(self._settings)
                try:
                    await producer.start()
                except BaseException:
                    await producer.stop()
                    raise
                self._dlq = producer
            await self._dlq.send_and_wait(topic, value, key=key)

        await self._retry(send, "dead letter")


async def run_consumer(consumer: EnvelopeConsumer, stop: asyncio.Event) -> None:
    """Run ``consumer`` until ``stop`` is set (or it ends), letting the batch in hand finish."""
    task = asyncio.create_task(consumer.run(), name=f"{consumer.config.worker}-consume")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        consumer.request_stop()
        stopper.cancel()
        try:
            await asyncio.wait_for(task, timeout=30)
        except (Exception, asyncio.CancelledError):
            log.warning("%s: consumer ended with an error during shutdown", consumer.config.worker, exc_info=True)
