"""A FastStream Kafka app that verifies every envelope in its decoder and settles every record explicitly.

Each record ends in exactly one outcome: *handled* (the sink took it), *duplicate* (counted), or *dead-lettered*
to ``dlq.v1`` with a reason (a failed check, a sink that raised: ``internal_error``). Only settled records are
acknowledged (``AckPolicy.MANUAL``; explicit offsets, never "everything consumed"), so a crash re-reads a record
instead of losing it, and a bad record never stops the subscriber.

Acknowledgement is grouped: the sink sees each event at once, and the chain state (SQLite, fsync'd) and the
Kafka offsets of the settled records are committed together every ``commit_every`` records, every
``commit_interval_s`` while idle, and on ``drain()``. One fsync'd commit per record ran at a tenth of the
throughput (``benchmarks/hospital.py``: 95 against 970 events/s on the 2-core CI machine)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import WithJsonSchema

from cloud_workers.hospital._security import faststream_security
from cloud_workers.hospital._spec_schemas import DEAD_LETTER_SCHEMA, envelope_schema
from cloud_workers.hospital._verdict import Accepted, Duplicate, EnvelopeDecoder, Rejected, Verdict, internal_error
from schemas import RejectReason
from streams import DLQ, BusMetrics, BusSettings, ChainStore, EnvelopeRejected, Keyring
from streams._chain_store import resume_at_stored
from streams._dlq import dead_letter_for

__all__ = ["Outcome", "Sink", "VerifiedSubscriber", "VerifiedSubscriberConfig", "kafka_broker"]

log = logging.getLogger(__name__)

#: Receives each accepted event; raising dead-letters the record (``internal_error``) instead of crashing.
Sink = Callable[[Accepted], Awaitable[None]]
Outcome = Literal["handled", "duplicate", "dead_lettered"]


@dataclass(kw_only=True)
class VerifiedSubscriberConfig:
    topic: str
    group_id: str
    #: Name in metrics, logs and dead letters.
    worker: str
    #: Decrypt with the keyring's data keys (a hospital); ``False`` verifies only (an auditor).
    decrypt: bool = True
    #: When set, an envelope for another hospital is dead-lettered as ``wrong_hospital``.
    hospital_id: str | None = None
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    title: str | None = None
    description: str | None = None
    #: JSON Schema of the records on ``topic`` for the AsyncAPI document (the envelope's, by default).
    payload_schema: dict[str, Any] | None = None
    #: SQLite file keeping the chain state with the offsets it reflects (``streams.ChainStore``), so a restart
    #: neither takes a replayed old envelope as a new baseline nor delivers a record twice; ``None``: memory only.
    state_path: Path | None = None
    #: Commit chain state and offsets after this many settled records ...
    commit_every: int = 200
    #: ... or when this long has passed (checked after each record, and while idle).
    commit_interval_s: float = 0.2


class _Assigned(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: VerifiedSubscriber) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._owner._resume(assigned)
        if assigned:
            self._owner.assigned.set()


def kafka_broker(settings: BusSettings, client_id: str, *, description: str | None = None) -> KafkaBroker:
    """A FastStream broker connected as ``settings`` say (bootstrap servers, TLS/SASL)."""
    return KafkaBroker(
        settings.bootstrap_servers.split(","),
        security=faststream_security(settings),
        client_id=client_id,
        request_timeout_ms=settings.request_timeout_ms,
        description=description,
        # FastStream's own logger writes to stdout; ours goes to stderr at the level the process chose.
        logger=logging.getLogger("medkiosk.faststream"),
    )


class VerifiedSubscriber:
    """One verified topic as a FastStream subscriber (plus its ``dlq.v1`` publisher) on ``broker``."""

    def __init__(
        self,
        config: VerifiedSubscriberConfig,
        broker: KafkaBroker,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        sink: Sink,
    ) -> None:
        self.config = config
        self.broker = broker
        self._metrics = metrics
        self._sink = sink
        self.decoder = EnvelopeDecoder(keyring, decrypt=config.decrypt)
        self.assigned = asyncio.Event()
        self._store = ChainStore(config.state_path) if config.state_path is not None else None
        self._stored_offsets: dict[tuple[str, int], int] = {}
        self._forgotten: list[tuple[str, str]] = []
        #: Next offset per partition of the records settled but not yet committed.
        self._pending: dict[tuple[str, int], int] = {}
        self._pending_count = 0
        self._last_commit = time.monotonic()
        #: A record has been decoded (its chain effect is in memory) and is not settled yet.
        self._busy = False
        self._commit_lock = asyncio.Lock()
        self._idle_task: asyncio.Task[None] | None = None
        if self._store is not None:
            links, self._stored_offsets = self._store.load()
            self.decoder.chain.restore(links)
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0
        self.outcomes: dict[str, int] = {}
        self._stopping = False
        self.dlq = broker.publisher(
            DLQ.name,
            title=f"{DLQ.name}:{config.worker}",
            description=f"Records {config.worker} refused, each kept whole with its reason (key: source topic).",
            schema=Annotated[bytes, WithJsonSchema(DEAD_LETTER_SCHEMA)],
        )
        schema = config.payload_schema or envelope_schema()
        subscriber = broker.subscriber(
            config.topic,
            group_id=config.group_id,
            auto_offset_reset=config.auto_offset_reset,
            ack_policy=AckPolicy.MANUAL,
            decoder=self._decode,
            listener=_Assigned(self),
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            # read_committed: a transactional gateway's aborted batches are never seen.
            isolation_level=settings.isolation_level,
            title=config.title or config.topic,
            description=config.description,
        )

        async def on_record(body: Verdict, msg: KafkaMessage) -> None:
            try:
                await self.settle(body)
                record = body.record
                self._pending[(record.topic, record.partition)] = record.offset + 1
                self._pending_count += 1
                due = time.monotonic() - self._last_commit >= config.commit_interval_s
                if self._pending_count >= config.commit_every or due:
                    await self.commit()
            finally:
                self._busy = False
            self._ensure_idle_committer()

        # FastStream reads the body's schema from the annotation; this module's annotations are strings.
        on_record.__annotations__ = {
            "body": Annotated[Verdict, WithJsonSchema(schema)],
            "msg": KafkaMessage,
            "return": None,
        }
        on_record.__name__ = "on_envelope"
        #: FastStream's subscriber (its aiokafka consumer commits the offsets) and the registered handler.
        self.endpoint = subscriber
        self.subscriber = subscriber(on_record)

    def request_stop(self) -> None:
        """Stop retrying a dead letter (the record stays uncommitted and is read again after a restart)."""
        self._stopping = True

    def _decode(self, msg: Any) -> Verdict:
        self._busy = True
        return self.decoder(msg)

    def _ensure_idle_committer(self) -> None:
        if self._idle_task is None or self._idle_task.done():
            self._idle_task = asyncio.create_task(self._commit_when_idle(), name=f"{self.config.worker}-commit")
            self._idle_task.add_done_callback(_log_crash)

    async def _commit_when_idle(self) -> None:
        while self._pending:
            await asyncio.sleep(self.config.commit_interval_s)
            await self.commit(idle=True)

    async def commit(self, *, idle: bool = False) -> None:
        """Persist the chain state and commit the offsets of every settled record (nothing else)."""
        async with self._commit_lock:
            if not self._pending or (idle and self._busy):
                return
            offsets, self._pending, self._pending_count = self._pending, {}, 0
            self._last_commit = time.monotonic()
            if self._store is not None:
                self._stored_offsets.update(offsets)
                # Copies: the decoder goes on changing the live links while the store writes in a thread.
                links = [
                    dataclasses.replace(link, recent=OrderedDict(link.recent))
                    for link in self.decoder.chain.take_dirty()
                ]
                forgotten, self._forgotten = self._forgotten, []
                await asyncio.to_thread(self._store.commit, links, offsets, forgotten)
            consumer = getattr(self.endpoint, "consumer", None)
            if not isinstance(consumer, AIOKafkaConsumer):
                return  # not connected, or FastStream's in-memory test broker (nothing to commit to)
            try:
                await consumer.commit({TopicPartition(t, p): OffsetAndMetadata(o, "") for (t, p), o in offsets.items()})
            except KafkaError as exc:
                # Not fatal: the chain state above is ahead, and a restart resumes from it.
                log.warning("%s: offset commit failed (%s)", self.config.worker, exc)

    async def drain(self) -> None:
        """Commit what is settled and stop the idle committer (before the broker stops)."""
        task, self._idle_task = self._idle_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self._busy:
            await self.commit()

    def close(self) -> None:
        """Close the chain store (after the broker has stopped)."""
        if self._store is not None:
            self._store.close()

    async def _resume(self, assigned: Any) -> None:
        """Start each newly assigned partition right after the last record the stored chain state reflects."""
        consumer = getattr(self.endpoint, "consumer", None)
        if not isinstance(consumer, AIOKafkaConsumer) or not self._stored_offsets:
            return
        self._forgotten += await resume_at_stored(
            consumer, assigned, self._stored_offsets, self.decoder.chain, self.config.worker
        )

    async def settle(self, verdict: Verdict) -> Outcome:
        """Bring ``verdict`` to its one outcome; never raises (except on cancellation)."""
        try:
            outcome = await self._settle(verdict)
        except Exception as exc:  # the last line of defence: still exactly one outcome
            log.error("%s: settling %s failed (%s)", self.config.worker, _where(verdict), type(exc).__name__)
            await self._dead_letter(Rejected(verdict.record, internal_error(exc, withhold_message=self.config.decrypt)))
            outcome = "dead_lettered"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        return outcome

    async def _settle(self, verdict: Verdict) -> Outcome:
        topic = verdict.record.topic
        if isinstance(verdict, Duplicate):
            self.duplicates += 1
            self._metrics.duplicate(topic)
            return "duplicate"
        if isinstance(verdict, Accepted):
            env = verdict.envelope
            try:
                if self.config.hospital_id is not None and env.hospital_id != self.config.hospital_id:
                    raise EnvelopeRejected(
                        RejectReason.REJECT_REASON_WRONG_HOSPITAL,
                        f"event for {env.hospital_id} on {self.config.hospital_id}'s topic",
                        producer_id=env.producer_id,
                        seq=env.seq,
                    )
                await self._sink(verdict)
            except EnvelopeRejected as exc:
                verdict = Rejected(verdict.record, exc)
            except Exception as exc:
                # Ids and the exception type only: its message may quote decrypted patient data.
                log.error("%s: sink failed on %s (%s)", self.config.worker, _where(verdict), type(exc).__name__)
                verdict = Rejected(
                    verdict.record,
                    internal_error(exc, producer_id=env.producer_id, seq=env.seq, withhold_message=self.config.decrypt),
                )
            else:
                self.handled += 1
                self._metrics.event_in(topic)
                self._metrics.latency(topic, max(0.0, _age_s(env.timestamp)))
                return "handled"
        await self._dead_letter(verdict)
        return "dead_lettered"

    async def _dead_letter(self, rejected: Rejected) -> None:
        exc = rejected.error
        self._metrics.reject(rejected.record.topic, exc.label)
        log.info("%s: rejected %s: %s", self.config.worker, _where(rejected), exc.label)
        _, key, value = dead_letter_for(rejected.record, exc, self.config.worker)
        backoff = 0.05
        while True:
            try:
                await self.dlq.publish(value, key=key)
                break
            except (KafkaError, TimeoutError) as err:
                if self._stopping:
                    raise
                log.warning("%s: dead letter failed (%s); retrying in %.2fs", self.config.worker, err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        self.dead_lettered += 1

    def stats(self) -> dict[str, Any]:
        return {
            "service": self.config.worker,
            "ready": self.assigned.is_set(),
            "delivered": self.handled,
            "duplicates": self.duplicates,
            "rejected": self.dead_lettered,
        }


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("idle committer crashed", exc_info=task.exception())


def _where(verdict: Verdict) -> str:
    r = verdict.record
    return f"{r.topic}[{r.partition}]@{r.offset}"


def _age_s(timestamp_ns: int) -> float:
    return (time.time_ns() - timestamp_ns) / 1e9
