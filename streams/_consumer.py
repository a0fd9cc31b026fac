"""The consumer every group-based worker uses: verify -> dedupe on (producer_id, seq) -> decrypt/decode -> handle.

Every record ends in exactly one outcome: handled, dropped as a byte-identical duplicate, or dead-lettered to
``dlq.v1`` with a reason (``medkiosk_rejects_total``). Nothing a record contains can stop the worker: an
unexpected exception in a check or a handler is ``internal_error``, logged once with its offset, and the
offset moves on. Offsets are committed only after a batch's effects (handler output, dead letters and, with a
``state_path``, the chain state) are durable, so a restart re-reads rather than loses; with durable chain state
it resumes exactly after the last record its chains reflect.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata
from google.protobuf.message import Message

from schemas import MedicalRecord
from streams._chain import ChainLink, ChainTracker
from streams._chain_store import ChainStore, resume_at_stored
from streams._dlq import DeadLetterLimits, DeadLetterSink, RejectLog
from streams._envelope import EnvelopeLimits
from streams._errors import EnvelopeRejected
from streams._keys import Keyring
from streams._metrics import BusMetrics
from streams._pipeline import Accepted, Duplicate, RecordPipeline, Rejected, internal_error
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
    #: This envelope restarted its producer's chain at seq 1 (the producer lost its state).
    reset: bool = False

    @property
    def e2e_seconds(self) -> float:
        return (time.time_ns() - self.envelope.timestamp) / 1e9


Handler = Callable[[VerifiedEvent], Awaitable[None]]
BatchDone = Callable[[], Awaitable[None]]
#: ``(changed chain links, forgotten links, next offsets)`` -> persist them atomically with the batch's effects.
StateWriter = Callable[[list[ChainLink], list[tuple[str, str]], dict[tuple[str, int], int]], Awaitable[None]]


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
    #: Keep chain state + offsets durable across restarts (``ChainStore``); off only for throwaway readers.
    durable_chain: bool = True
    #: SQLite file for it; default ``<state_dir>/chains/<group_id>.db``.
    state_path: Path | None = None
    #: The ``state_writer`` commits the input offsets itself (a Kafka transaction): no separate commit.
    writer_commits_offsets: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: EnvelopeConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        await self._owner._resume(assigned)


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
        on_assigned: Callable[[list[TopicPartition]], Awaitable[None]] | None = None,
        state_writer: StateWriter | None = None,
        initial_state: tuple[list[ChainLink], dict[tuple[str, int], int]] | None = None,
    ) -> None:
        self.config = config
        self._settings = settings
        self._metrics = metrics
        self._handler = handler
        self._on_batch_done = on_batch_done
        self._on_assigned = on_assigned
        self._newly_assigned: list[TopicPartition] = []
        self.chain = ChainTracker()
        self.pipeline = RecordPipeline(
            keyring,
            self.chain,
            decrypt=config.decrypt,
            limits=EnvelopeLimits(max_record_bytes=settings.max_record_bytes, max_field_bytes=settings.max_field_bytes),
        )
        self._store: ChainStore | None = None
        self._state_writer = state_writer
        self._stored_offsets: dict[tuple[str, int], int] = {}
        if initial_state is None and state_writer is None and config.durable_chain:
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", config.group_id)[:200]
            self._store = ChainStore(config.state_path or settings.state_dir / "chains" / f"{safe}.db")
            initial_state = self._store.load()
        if initial_state is not None:
            links, self._stored_offsets = initial_state
            self.chain.restore(links)
        self._forgotten: list[tuple[str, str]] = []
        self._consumer: AIOKafkaConsumer | None = None
        self.dlq = DeadLetterSink(
            settings,
            metrics,
            worker=config.worker,
            limits=DeadLetterLimits(max_value_bytes=settings.dlq_max_value_bytes),
        )
        self._reject_log = RejectLog(config.worker)
        self._stopping = asyncio.Event()
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0
        self.resets = 0
        self.assigned = asyncio.Event()
        self._positions: dict[TopicPartition, int] = {}

    async def start(self) -> None:
        cfg = self.config
        consumer = AIOKafkaConsumer(
            **self._settings.consumer_kwargs(),
            client_id=f"{self._settings.client_id}-{cfg.worker}",
            group_id=cfg.group_id,
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
            **cfg.extra,
        )
        await consumer.start()
        consumer.subscribe(list(cfg.topics), listener=_Assignments(self))
        self._consumer = consumer
        self._metrics.add_lag_source(self._lag)

    async def _resume(self, assigned: list[TopicPartition]) -> None:
        """Start each newly assigned partition right after the last record the chain state reflects."""
        consumer = self._consumer
        # aiokafka may call the listener while a batch is being processed: the hook runs before the next batch.
        self._newly_assigned.extend(assigned)
        if consumer is None or not self._stored_offsets:
            return
        self._forgotten.extend(
            await resume_at_stored(consumer, assigned, self._stored_offsets, self.chain, self.config.worker)
        )

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer holds now (empty before it has joined its group)."""
        return set(self._consumer.assignment()) if self._consumer is not None else set()

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

    @property
    def stopping(self) -> bool:
        """Whether a stop was requested (retry loops give up then)."""
        return self._stopping.is_set()

    def request_stop(self) -> None:
        """Make ``run()`` return after the batch in hand is processed and committed."""
        self._stopping.set()

    async def stop(self) -> None:
        self._stopping.set()
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), timeout=10)
        with contextlib.suppress(Exception):
            await self.dlq.stop()
        if self._store is not None:
            self._store.close()

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
            if self._newly_assigned and self._on_assigned is not None:
                hook, fresh = self._on_assigned, self._newly_assigned
                self._newly_assigned = []
                await self._retry(functools.partial(hook, fresh), "assignment hook")
            if not batches:
                continue
            try:
                await self._batch(consumer, batches)
            except (KafkaError, TimeoutError, Retryable):
                if self._stopping.is_set():
                    return
                raise

    async def _batch(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        offsets: dict[TopicPartition, OffsetAndMetadata] = {}
        for tp, records in batches.items():
            for record in records:
                await self._process(record)
                offsets[tp] = OffsetAndMetadata(record.offset + 1, "")
                self._positions[tp] = record.offset + 1
        if self._on_batch_done is not None:
            await self._retry(self._on_batch_done, "batch flush")
        await self.dlq.flush(self._stopping)
        await self._save_state(offsets)
        if not self.config.writer_commits_offsets:
            await self._commit(consumer, offsets)

    async def _save_state(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if self._store is None and self._state_writer is None:
            return
        links = self.chain.take_dirty()
        forgotten, self._forgotten = self._forgotten, []
        plain = {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
        self._stored_offsets.update(plain)
        if self._state_writer is not None:
            await self._state_writer(links, forgotten, plain)
        elif self._store is not None:
            await asyncio.to_thread(self._store.commit, links, plain, forgotten)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # Not fatal: the records are re-read after a restart and deduplicated.
            log.warning("%s: offset commit failed (%s)", self.config.worker, exc)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        topic = record.topic
        outcome = self.pipeline.open(topic, record.partition, record.value)
        if isinstance(outcome, Duplicate):
            self.duplicates += 1
            self._metrics.duplicate(topic)
            return
        if isinstance(outcome, Rejected):
            self._reject(record, outcome.error)
            return
        assert isinstance(outcome, Accepted)
        rec = outcome.envelope
        if outcome.reset:
            self.resets += 1
            self._metrics.chain_reset(topic, rec.producer_id)
            log.warning(
                "%s: %s restarted its chain in %s at seq 1 (lost state?) at %s@%d",
                self.config.worker,
                rec.producer_id,
                rec.stream,
                topic,
                record.offset,
            )
        event = VerifiedEvent(record, rec, outcome.digest, outcome.message, outcome.reset)
        try:
            await self._retry(lambda: self._handler(event), f"handler for {topic}@{record.offset}")
        except EnvelopeRejected as exc:
            self._reject(record, exc)
            return
        except (Retryable, KafkaError, TimeoutError):
            raise  # only while stopping: the batch is not committed and is read again
        except Exception as exc:
            log.exception("%s: handler failed on %s@%d", self.config.worker, topic, record.offset)
            self._reject(record, internal_error(exc, rec))
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

    def _reject(self, record: ConsumerRecord[bytes, bytes], exc: EnvelopeRejected) -> None:
        self.rejected += 1
        self._metrics.reject(record.topic, exc.label)
        self._reject_log(record.topic, record.partition, record.offset, exc)
        self.dlq.add(record, exc)


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
