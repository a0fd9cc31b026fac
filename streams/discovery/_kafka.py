"""The Kafka-native registry (the zero-extra-server default): signed heartbeats on the compacted
``registry.v1`` topic, keyed ``<service>/<instance_id>``; every reader applies the TTL itself.

A heartbeat is an ordinary envelope (ECDSA-signed by the instance's own device or service key, not encrypted:
it carries no patient data), so a reader trusts an instance only as far as the keyring does: an envelope
that fails verification, or that speaks for an instance id other than its signer, goes to ``dlq.v1``.
Sequence numbers are microseconds since the epoch, so they keep increasing across restarts of the instance
and a reader's replay check (same ``seq``, different bytes) never trips on a restarted kiosk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import RejectReason, ServiceInstance
from streams._catalog import REGISTRY
from streams._envelope import GENESIS_HASH, ChainState, seal
from streams._errors import EnvelopeRejected
from streams._keys import Keyring
from streams._metrics import BusMetrics
from streams._reader import LogEvent, LogReader
from streams._sender import make_producer
from streams._settings import BusSettings
from streams._tasks import supervise
from streams.discovery._base import RegistryBase, sort_instances
from streams.discovery._model import Check, Instance, check_meta, check_name

__all__ = ["KafkaRegistry"]

log = logging.getLogger(__name__)

#: A heartbeat stamped in the future counts as sent now: a fast clock cannot buy an instance extra life.
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class _Seen:
    msg: ServiceInstance
    #: ``min(msg.at, time of reading)`` in unix seconds.
    at_s: float


def instance_from(msg: ServiceInstance, at_s: float, now_s: float, blind_s: float = 0.0) -> Instance:
    """What a reader concludes from the newest heartbeat of an instance at ``now_s``, not counting the
    ``blind_s`` seconds since then during which the reader itself could not reach the broker."""
    ttl_s = msg.ttl_ms / 1000.0
    alive = msg.alive and now_s - blind_s < at_s + ttl_s
    return Instance(
        service=msg.service,
        instance_id=msg.instance_id,
        address=msg.address,
        port=msg.port,
        meta=dict(msg.meta),
        healthy=alive and msg.check_passing,
        check_passing=msg.check_passing,
        last_seen=at_s,
        ttl_s=ttl_s,
    )


class KafkaRegistry(RegistryBase):
    """Registry on a Kafka topic. Writers need their signing key (``producer_id``); readers need the
    public keys. Reading starts on the first ``instances``/``watch`` call (a process that only
    announces itself never reads the topic)."""

    def __init__(
        self,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics | None = None,
        *,
        producer_id: str | None = None,
        topic: str = REGISTRY.name,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._keyring = keyring
        self._metrics = metrics if metrics is not None else BusMetrics(f"registry-{producer_id or 'reader'}")
        self._producer_id = producer_id
        info = keyring.producers.get(producer_id) if producer_id else None
        #: A kiosk's envelopes name its hospital (the keyring binds the kiosk to it); services name none.
        self._hospital_id = info.hospital_id if info is not None else ""
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None
        self._chain = ChainState(0, GENESIS_HASH)
        self._reader: LogReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._latest: dict[tuple[str, str], _Seen] = {}
        self._probe_task: asyncio.Task[None] | None = None
        #: When the reader last reached the broker, and the (start, end) spans it could not.
        self._contact = time.time()
        self._blind_since: float | None = None
        self._blind: list[tuple[float, float]] = []
        self._lock = asyncio.Lock()

    # --- writing ------------------------------------------------------------------------------------

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

    async def _publish(self, msg: ServiceInstance) -> None:
        if self._producer_id is None:
            raise RuntimeError("this KafkaRegistry has no producer_id: it can read but not register")
        if msg.instance_id != self._producer_id:
            raise ValueError(f"{self._producer_id} may only register itself, not {msg.instance_id!r}")
        signing = self._keyring.signing_key(self._producer_id)
        async with self._lock:
            now_us = time.time_ns() // 1000
            chain = ChainState(max(self._chain.seq, now_us - 1), self._chain.prev_hash)
            rec, self._chain = seal(
                msg,
                signing_key=signing,
                chain=chain,
                hospital_id=self._hospital_id,
                data_key=None,
                timestamp_ns=msg.at,
                stream=self.topic,
            )
            producer = await self._ensure_producer()
            key = f"{msg.service}/{msg.instance_id}".encode()
            try:
                await producer.send_and_wait(self.topic, rec.SerializeToString(), key=key)
            except BaseException:
                await self._drop_producer()
                raise
        self._metrics.event_out(self.topic)

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def register(
        self,
        *,
        service: str,
        instance_id: str,
        address: str,
        port: int,
        meta: Mapping[str, str] | None = None,
        check: Check | None = None,
        passing: bool = True,
        output: str = "",
    ) -> None:
        """Publish one signed heartbeat (call again within the TTL to stay alive)."""
        check = check or Check()
        msg = ServiceInstance(
            service=check_name("service", service),
            instance_id=check_name("instance id", instance_id),
            address=address,
            port=port,
            at=time.time_ns(),
            ttl_ms=round(check.ttl_s * 1000),
            alive=True,
            check_passing=passing,
            check_output=output[:512],
        )
        msg.meta.update(check_meta(meta or {}))
        await self._publish(msg)

    async def deregister(self, service: str, instance_id: str) -> None:
        """Publish a signed 'going away' heartbeat: readers drop the instance at once."""
        msg = ServiceInstance(
            service=check_name("service", service),
            instance_id=check_name("instance id", instance_id),
            at=time.time_ns(),
            ttl_ms=1000,
            alive=False,
        )
        await self._publish(msg)

    # --- reading ------------------------------------------------------------------------------------

    async def _ensure_reader(self) -> None:
        if self._reader is not None:
            return
        reader = LogReader(self._settings, self._keyring, self._metrics, worker=f"registry-{id(self):x}")
        await reader.start()
        try:
            tps = await reader.partitions(self.topic)
            await reader.assign(dict.fromkeys(tps))
            await self._catch_up(reader)
        except BaseException:
            await reader.stop()
            raise
        self._reader = reader
        self._task = supervise(asyncio.create_task(self._follow(reader), name="registry-reader"))
        self._probe_task = supervise(asyncio.create_task(self._probe(reader), name="registry-probe"))

    async def _catch_up(self, reader: LogReader, timeout_s: float = 30.0) -> None:
        """Read what the topic holds now: past its end offsets until a poll comes back empty (some stores
        under-report end offsets, others over-report them: see BROKER.md). Never raises on time: whatever
        was read is what this reader knows, and following the topic continues from there."""
        loop = asyncio.get_running_loop()
        ends = await reader.end_offsets()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            events = await reader.poll(timeout_ms=200)
            for event in events:
                await self._accept(reader, event)
            if not events and await reader.reached(ends):
                break

    async def _follow(self, reader: LogReader) -> None:
        while True:
            for event in await reader.poll(timeout_ms=500):
                await self._accept(reader, event)

    async def _probe(self, reader: LogReader, every_s: float = 1.0) -> None:
        """Track whether this reader can reach the broker. While it cannot, silence proves nothing: the TTL
        does not run for that time, so a broker outage does not make the whole fleet look dead to it."""
        while True:
            ok = False
            with contextlib.suppress(KafkaError, TimeoutError, OSError):
                await asyncio.wait_for(reader.end_offsets(), timeout=2 * every_s)
                ok = True
            now = time.time()
            if ok:
                if self._blind_since is not None:
                    self._blind = [*self._blind[-63:], (self._blind_since, now)]
                    self._blind_since = None
                    self._changed()
                self._contact = now
            elif self._blind_since is None:
                self._blind_since = self._contact
            await asyncio.sleep(every_s)

    def _blind_after(self, since: float, now: float) -> float:
        spans = [*self._blind, *([(self._blind_since, now)] if self._blind_since is not None else [])]
        return sum(max(0.0, min(end, now) - max(start, since)) for start, end in spans)

    @property
    def reachable(self) -> bool:
        """Whether this reader's last probe of the broker succeeded."""
        return self._blind_since is None

    async def _accept(self, reader: LogReader, event: LogEvent) -> None:
        msg = event.message
        if not isinstance(msg, ServiceInstance):
            await reader.reject(
                event.record, EnvelopeRejected(RejectReason.REJECT_REASON_WRONG_SCHEMA, event.envelope.schema)
            )
            return
        if msg.instance_id != event.envelope.producer_id:
            await reader.reject(
                event.record,
                EnvelopeRejected(
                    RejectReason.REJECT_REASON_UNAUTHORIZED,
                    f"{event.envelope.producer_id} may not speak for instance {msg.instance_id!r}",
                    producer_id=event.envelope.producer_id,
                    seq=event.envelope.seq,
                ),
            )
            return
        key = (msg.service, msg.instance_id)
        known = self._latest.get(key)
        if known is not None and known.msg.at >= msg.at:
            return  # an older heartbeat read late (another partition, a replay): the newest one wins
        self._latest[key] = _Seen(msg, min(msg.at, time.time_ns()) / _NS)
        self._changed()

    @property
    def rejected(self) -> int:
        """Heartbeats refused so far (each also went to ``dlq.v1`` with its reason)."""
        return self._reader.rejected if self._reader is not None else 0

    async def instances(self, service: str | None = None) -> list[Instance]:
        """Every instance whose last heartbeat is not a deregistration, with its health now."""
        await self._ensure_reader()
        now = time.time()
        return sort_instances(
            [
                instance_from(seen.msg, seen.at_s, now, self._blind_after(seen.at_s, now))
                for (svc, _), seen in self._latest.items()
                if seen.msg.alive and (service is None or svc == service)
            ]
        )

    async def stop(self) -> None:
        for task in (self._task, self._probe_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._probe_task = None
        reader, self._reader = self._reader, None
        if reader is not None:
            try:
                await reader.stop()
            except asyncio.CancelledError:
                # aiokafka's consumer, stopped while the broker is away, can surface its inner cancellation;
                # only a cancellation of this task itself goes on.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
        await self._drop_producer()
