"""Read chosen partitions from chosen offsets without a consumer group: for roles whose state is the log.

A role that must restart fast and re-read its work from known offsets (the federated-learning roles re-read
a round from the offsets its announcement records) cannot wait ~5 s for a group join, so ``LogReader``
assigns partitions itself and seeks. Every record is verified as ``EnvelopeConsumer`` does (parse ->
known producer -> key version -> signature -> hospital -> decrypt -> decode) and deduplicated on
``(producer_id, seq)``: a byte-identical repeat is dropped and counted, a *different* envelope under a
``seq`` already seen is ``REPLAYED_SEQ``. Rejections go to ``dlq.v1`` with their reason and a metric.

There is no gap or chain-order check: a producer's envelopes may be spread over partitions (keys such as
``model/round/shard``), so a reader of some partitions sees only a subset of its sequence numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from google.protobuf.message import Message

from schemas import MedicalRecord, RejectReason
from streams._chain import ChainVerdict
from streams._dlq import DeadLetterLimits, DeadLetterSink, RejectLog
from streams._envelope import EnvelopeLimits
from streams._errors import EnvelopeRejected
from streams._keys import Keyring
from streams._metrics import BusMetrics
from streams._pipeline import Accepted, Duplicate, RecordPipeline
from streams._settings import BusSettings

__all__ = ["LogEvent", "LogReader", "SeqDedupe"]

log = logging.getLogger(__name__)

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One verified, first-seen envelope and its decoded inner message."""

    record: Record
    envelope: MedicalRecord
    digest: bytes
    message: Message

    @property
    def partition(self) -> TopicPartition:
        """Where the record was read."""
        return TopicPartition(self.record.topic, self.record.partition)


class SeqDedupe:
    """Remembers the envelope hash of each ``(producer_id, seq)`` seen (the last ``window`` per producer)."""

    def __init__(self, window: int = 1 << 16) -> None:
        self._window = window
        self._seen: dict[str, OrderedDict[int, bytes]] = {}

    def is_new(self, rec: MedicalRecord, digest: bytes) -> bool:
        """True for a first sighting, False for a byte-identical repeat; raises ``REPLAYED_SEQ`` for a
        different envelope under a sequence number already seen."""
        seen = self._seen.get(rec.producer_id)
        known = seen.get(rec.seq) if seen is not None else None
        if known is None:
            return True
        if known == digest:
            return False
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_REPLAYED_SEQ,
            f"seq {rec.seq} was already used by a different envelope",
            producer_id=rec.producer_id,
            seq=rec.seq,
        )

    def remember(self, rec: MedicalRecord, digest: bytes) -> None:
        """Record an accepted envelope."""
        seen = self._seen.setdefault(rec.producer_id, OrderedDict())
        seen[rec.seq] = digest
        if len(seen) > self._window:
            seen.popitem(last=False)

    def check(self, rec: MedicalRecord, digest: bytes) -> ChainVerdict:
        """``Sequencer`` view of ``is_new``."""
        return ChainVerdict.ACCEPT if self.is_new(rec, digest) else ChainVerdict.DUPLICATE

    def accept(self, rec: MedicalRecord, digest: bytes, *, source: str = "") -> None:
        """``Sequencer`` view of ``remember``."""
        self.remember(rec, digest)


class LogReader:
    """Manually assigned, verifying, deduplicating reader of some partitions (see the module docstring)."""

    def __init__(
        self,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        *,
        worker: str,
        window: int = 1 << 16,
    ) -> None:
        self._settings = settings
        self._keyring = keyring
        self._metrics = metrics
        self.worker = worker
        self._dedupe = SeqDedupe(window)
        self._pipeline = RecordPipeline(
            keyring,
            self._dedupe,
            limits=EnvelopeLimits(max_record_bytes=settings.max_record_bytes, max_field_bytes=settings.max_field_bytes),
        )
        self._consumer: AIOKafkaConsumer | None = None
        self._fetcher: AIOKafkaConsumer | None = None
        self.dlq = DeadLetterSink(
            settings, metrics, worker=worker, limits=DeadLetterLimits(max_value_bytes=settings.dlq_max_value_bytes)
        )
        self._reject_log = RejectLog(worker)
        self.accepted = 0
        self.duplicates = 0
        self.rejected = 0

    def _new_consumer(self, suffix: str) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            **self._settings.kafka_kwargs(),
            client_id=f"{self._settings.client_id}-{self.worker}-{suffix}",
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.fetch_max_wait_ms,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )

    async def start(self) -> None:
        """Connect (no partitions yet: see :meth:`assign`)."""
        consumer = self._new_consumer("reader")
        await consumer.start()
        self._consumer = consumer

    async def stop(self) -> None:
        """Disconnect everything this reader opened."""
        for attr in ("_consumer", "_fetcher"):
            client = getattr(self, attr)
            setattr(self, attr, None)
            if client is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.stop(), timeout=10)
        with contextlib.suppress(Exception):
            await self.dlq.stop()

    @property
    def consumer(self) -> AIOKafkaConsumer:
        assert self._consumer is not None, "start() first"
        return self._consumer

    async def partitions(self, topic: str, timeout_s: float = 30.0) -> list[TopicPartition]:
        """Every partition of ``topic`` (waits for the metadata to show the topic)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            found = None
            with contextlib.suppress(KafkaError):
                # The consumer's own metadata tracks only assigned topics; ask the cluster for all of them.
                cluster = await self.consumer._client.fetch_all_metadata()
                found = cluster.partitions_for_topic(topic)
            if found:
                return [TopicPartition(topic, p) for p in sorted(found)]
            if loop.time() > deadline:
                raise LookupError(f"topic {topic!r} does not exist")
            await asyncio.sleep(0.1)

    async def assign(self, start: Mapping[TopicPartition, int | None]) -> None:
        """Read exactly these partitions, each from its offset (``None``: the beginning)."""
        consumer = self.consumer
        consumer.assign(list(start))
        for tp, offset in start.items():
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)

    async def end_offsets(self, tps: Iterable[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The current end (high watermark) of the given or all assigned partitions."""
        wanted = list(tps) if tps is not None else list(self.consumer.assignment())
        if not wanted:
            return {}
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(wanted)
        return ends

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record this reader will return from ``tp``."""
        pos: int = await self.consumer.position(tp)
        return pos

    async def reached(self, ends: Mapping[TopicPartition, int]) -> bool:
        """Whether every partition in ``ends`` has been read up to its offset there."""
        for tp, end in ends.items():
            if await self.position(tp) < end:
                return False
        return True

    async def poll(self, timeout_ms: int = 200, max_records: int = 500) -> list[LogEvent]:
        """Fetch what is there; returns the accepted, first-seen events (rejections are dead-lettered)."""
        try:
            batches = await self.consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as exc:
            log.warning("%s: fetch failed (%s); retrying", self.worker, exc)
            await asyncio.sleep(0.2)
            return []
        events: list[LogEvent] = []
        for records in batches.values():
            for record in records:
                event = self._verify(record)
                if event is not None:
                    events.append(event)
        if len(self.dlq):
            await self.dlq.flush()
        return events

    async def read_to_end(self, timeout_s: float = 60.0) -> list[LogEvent]:
        """Everything up to the end offsets as of now, in every assigned partition."""
        ends = await self.end_offsets()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        events: list[LogEvent] = []
        while not await self.reached(ends):
            if loop.time() > deadline:
                raise TimeoutError(f"{self.worker}: could not read up to {ends} in {timeout_s:g}s")
            events.extend(await self.poll(timeout_ms=100))
        return events

    def _verify(self, record: Record) -> LogEvent | None:
        outcome = self._pipeline.open(record.topic, record.partition, record.value)
        if isinstance(outcome, Duplicate):
            self.duplicates += 1
            self._metrics.duplicate(record.topic)
            return None
        if not isinstance(outcome, Accepted):
            self._queue_reject(record, outcome.error)
            return None
        assert outcome.message is not None
        self.accepted += 1
        self._metrics.event_in(record.topic)
        return LogEvent(record, outcome.envelope, outcome.digest, outcome.message)

    def _queue_reject(self, record: Record, exc: EnvelopeRejected) -> None:
        self.rejected += 1
        self._metrics.reject(record.topic, exc.label)
        self._reject_log(record.topic, record.partition, record.offset, exc)
        self.dlq.add(record, exc)

    async def reject(self, record: Record, exc: EnvelopeRejected) -> None:
        """Dead-letter ``record`` with ``exc``'s reason and count it (also for handler-level rejections)."""
        self._queue_reject(record, exc)
        await self.dlq.flush()

    async def fetch(
        self, wanted: Mapping[TopicPartition, Iterable[int]], timeout_s: float = 30.0
    ) -> dict[tuple[TopicPartition, int], Record]:
        """The raw records at the given offsets (unverified: the caller checks them), read with a second
        consumer so that this reader's own positions do not move. Offsets not found are absent."""
        want = {tp: set(offsets) for tp, offsets in wanted.items() if offsets}
        found: dict[tuple[TopicPartition, int], Record] = {}
        if not want:
            return found
        if self._fetcher is None:
            fetcher = self._new_consumer("fetch")
            await fetcher.start()
            self._fetcher = fetcher
        fetcher = self._fetcher
        fetcher.assign(list(want))
        for tp, offsets in want.items():
            fetcher.seek(tp, min(offsets))
        ends = await fetcher.end_offsets(list(want))
        active = {tp for tp in want if min(want[tp]) < ends[tp]}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while active and loop.time() < deadline:
            batches = await fetcher.getmany(*active, timeout_ms=200)
            for tp, records in batches.items():
                for record in records:
                    if record.offset in want[tp]:
                        found[(tp, record.offset)] = record
            for tp in list(active):
                pos = await fetcher.position(tp)
                if pos > max(want[tp]) or pos >= ends[tp]:
                    active.discard(tp)
        return found
