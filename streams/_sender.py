"""Ships an outbox to the broker: in order, acknowledged prefix only, retrying through outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from streams._metrics import BusMetrics
from streams._outbox import Outbox
from streams._settings import BusSettings
from streams._tasks import supervise

__all__ = ["OutboxSender", "make_producer", "make_transactional_producer", "send_rows"]

log = logging.getLogger(__name__)


def make_producer(settings: BusSettings, **overrides: Any) -> AIOKafkaProducer:
    """An aiokafka producer with acks=all and batches big enough for a whole outbox batch; idempotent
    when ``settings.enable_idempotence`` (brokers that grant InitProducerId: Apache Kafka)."""
    kwargs: dict[str, Any] = {
        **settings.kafka_kwargs(),
        "client_id": settings.client_id,
        "acks": "all",
        "enable_idempotence": settings.enable_idempotence,
        "linger_ms": 2,
        "max_batch_size": 1024 * 1024,
        "max_request_size": 4 * 1024 * 1024,
        **overrides,
    }
    return AIOKafkaProducer(**kwargs)


def make_transactional_producer(settings: BusSettings, transactional_id: str, **overrides: Any) -> AIOKafkaProducer:
    """A transactional (hence idempotent) producer for consume-transform-produce on brokers with
    transactions (Apache Kafka; not Tansu). Downstream readers use ``isolation_level="read_committed"``.
    *transactional_id* must be stable across restarts of the same worker instance: the broker fences the
    old incarnation's open transaction when the new one starts."""
    return make_producer(settings, enable_idempotence=True, transactional_id=transactional_id, **overrides)


class _Partitions:
    """The partition the default (Java-compatible murmur2) partitioner gives each key, remembered per key
    and partition count: an outbox sends the same few keys (kiosk ids, a gateway id) thousands of times."""

    def __init__(self) -> None:
        self._default = DefaultPartitioner()
        self._known: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes, partitions: list[int]) -> int:
        index = self._known.get((key, len(partitions)))
        if index is None:
            index = partitions.index(self._default(key, partitions, partitions))
            if len(self._known) > 100_000:
                self._known.clear()
            self._known[(key, len(partitions))] = index
        return partitions[index]


_PARTITIONS = _Partitions()


async def send_rows(
    producer: AIOKafkaProducer, rows: Sequence[tuple[str, bytes | None, bytes]]
) -> list[tuple[asyncio.Future[Any], list[int]]]:
    """Queue ``rows`` (topic, key, value) as whole record batches, one per topic-partition (several when
    one would be too large), each keeping the rows' order; returns every batch's delivery future with the
    indexes of the rows it carries. A keyed row goes to the partition ``producer.send`` would pick (the
    same murmur2 partitioner), so per-key placement and order are as with ``send``: this only skips its
    per-record bookkeeping. Keyless rows are sent one by one, where the producer picks the partition."""
    metadata = producer.client.cluster
    parts: dict[str, list[int]] = {}
    groups: dict[tuple[str, int], list[int]] = {}
    out: list[tuple[asyncio.Future[Any], list[int]]] = []
    for index, (topic, key, value) in enumerate(rows):
        if key is None:
            out.append((await producer.send(topic, value), [index]))
            continue
        if topic not in parts:
            await producer.client._wait_on_metadata(topic)
            parts[topic] = sorted(metadata.partitions_for_topic(topic) or ())
        groups.setdefault((topic, _PARTITIONS(key, parts[topic])), []).append(index)
    for (topic, partition), members in groups.items():
        batch, held = producer.create_batch(), list[int]()
        for index in members:
            _, key, value = rows[index]
            if batch.append(key=key, value=value, timestamp=None) is None:
                if held:
                    batch.close()
                    out.append((await producer.send_batch(batch, topic, partition=partition), held))
                    batch, held = producer.create_batch(), list[int]()
                if batch.append(key=key, value=value, timestamp=None) is None:  # larger than a whole batch
                    out.append((await producer.send(topic, value, key=key, partition=partition), [index]))
                    batch = producer.create_batch()
                    continue
            held.append(index)
        if held:
            batch.close()
            out.append((await producer.send_batch(batch, topic, partition=partition), held))
    return out


class OutboxSender:
    """Background task that drains an ``Outbox`` into Kafka.

    It sends a batch, waits for every acknowledgement, and deletes only the acknowledged prefix, so
    a message is never deleted before the broker has it and later messages never overtake an earlier
    one that failed (consumers check per-producer sequence). During an outage it backs off and
    retries; messages wait on disk.
    """

    def __init__(
        self,
        outbox: Outbox,
        settings: BusSettings,
        metrics: BusMetrics,
        *,
        batch: int = 256,
        idle_s: float = 1.0,
        max_backoff_s: float = 2.0,
        send_timeout_s: float = 15.0,
    ) -> None:
        self._outbox = outbox
        self._settings = settings
        self._metrics = metrics
        metrics.outbox_source(outbox.depth)
        self._batch = batch
        self._idle_s = idle_s
        self._max_backoff_s = max_backoff_s
        self._send_timeout_s = send_timeout_s
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.sent = 0
        self.failures = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = supervise(asyncio.create_task(self._run(), name="outbox-sender"))

    def notify(self) -> None:
        """Wake the sender now (new events were stored)."""
        self._wake.set()

    async def _ensure_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = make_producer(self._settings)
            try:
                await producer.start()
            except BaseException:
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def flush_once(self) -> int:
        """Send one batch; returns how many messages were acknowledged (raises on failure)."""
        rows, depth, age = await asyncio.to_thread(self._outbox.pending_with_depth, self._batch)
        self._metrics.outbox(depth, age)
        if not rows:
            return 0
        producer = await self._ensure_producer()
        sent = await send_rows(producer, [(r.topic, r.key, r.value) for r in rows])
        results = await asyncio.wait_for(
            asyncio.gather(*(f for f, _ in sent), return_exceptions=True), timeout=self._send_timeout_s
        )
        # The acknowledged prefix only: rows up to the first one whose batch the broker did not take.
        failed = len(rows)
        first_error: BaseException | None = None
        for (_, members), result in zip(sent, results, strict=True):
            if isinstance(result, BaseException) and members[0] < failed:
                failed, first_error = members[0], result
        acked = [row.id for row in rows[:failed]]
        await asyncio.to_thread(self._outbox.ack, acked)
        per_topic: dict[str, int] = {}
        for row in rows[:failed]:
            per_topic[row.topic] = per_topic.get(row.topic, 0) + 1
        for topic, n in per_topic.items():
            self._metrics.event_out(topic, n)
        self.sent += len(acked)
        if first_error is not None:
            raise first_error
        return len(acked)

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            try:
                n = await self.flush_once()
                backoff = 0.05
            except (KafkaError, TimeoutError, OSError) as exc:
                self.failures += 1
                log.warning("outbox send failed (%s); retrying in %.2fs", type(exc).__name__, backoff)
                await self._drop_producer()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            if n == 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    # Writers call notify(); the timeout only covers a wake-up that was missed.
                    await asyncio.wait_for(self._wake.wait(), timeout=self._idle_s)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the outbox is empty (True) or ``timeout_s`` passes (False)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            depth, _ = await asyncio.to_thread(self._outbox.depth)
            if depth == 0:
                return True
            self.notify()
            await asyncio.sleep(0.05)
        return False

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_producer()
