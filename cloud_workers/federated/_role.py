"""The wiring the coordinator, aggregator and keyholder share: the log is their state.

On start a role (1) ships what its outbox still holds, (2) reads ``fl.rounds.v1`` from the beginning,
(3) seeks every other topic it reads to the start offsets the latest round's announcement recorded (the
beginning when there is none), (4) reads all of it up to the end offsets as of then, and only then
(5) acts. Afterwards it polls, feeds each verified event to its state machine and acts again. Anything
a state machine refuses is dead-lettered with its reason; nothing crashes the loop.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiokafka import TopicPartition
from google.protobuf.message import DecodeError

from cloud_workers.federated._metrics import FlMetrics
from schemas import RejectReason, RoundAnnouncement
from streams import BusMetrics, BusSettings, EnvelopeRejected, FlTopics, Keyring, LogEvent, LogReader

__all__ = ["FlIdentities", "FlRole"]

log = logging.getLogger(__name__)

PartitionFilter = Callable[[TopicPartition], bool]


def _require_model_name(event: LogEvent) -> None:
    """An FL message naming no model belongs to no run: dead-letter it instead of ignoring it silently."""
    msg = event.message
    descriptor = getattr(msg, "DESCRIPTOR", None)
    named = getattr(msg, "model_name", "")
    if descriptor is not None and "model_name" in descriptor.fields_by_name and not named:
        env = event.envelope
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_MALFORMED,
            f"{env.schema} names no model",
            producer_id=env.producer_id,
            seq=env.seq,
        )


@dataclass(frozen=True, kw_only=True)
class FlIdentities:
    """Who may publish what in a training run (producer ids in the keys registry)."""

    #: Signs announcements and closes on the rounds topic.
    coordinator: str = "fl-coordinator"
    #: Signs model versions (a separate chain: kiosks read the models topic alone and check gap-free order).
    models: str = "fl-coordinator-models"
    #: May publish receipts and sums; ``None``: any cloud service.
    aggregators: tuple[str, ...] | None = None
    #: May publish decrypted aggregates; ``None``: any cloud service.
    keyholders: tuple[str, ...] | None = None
    #: Data-key domain the keyholder encrypts aggregates with: only it and the coordinator hold that key.
    aggregate_domain: str = "fl"


class FlRole(ABC):
    """Base of the three cloud roles (see the module docstring)."""

    def __init__(
        self,
        name: str,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        topics: FlTopics,
        *,
        poll_ms: int = 100,
        hold_at: str | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.keyring = keyring
        self.metrics = metrics
        self.topics = topics
        self.fl = FlMetrics(metrics)
        self.reader = LogReader(settings, keyring, metrics, worker=name)
        self.ready = False
        self.phase = "starting"
        self._poll_ms = poll_ms
        #: Test hook: ``<point>:<round>`` makes the role stop (and wait to be killed) at that point.
        self._hold_at = hold_at
        self._rounds_tps: list[TopicPartition] = []

    # --- what each role says ------------------------------------------------------------------------------

    @abstractmethod
    def inputs(self) -> Mapping[str, PartitionFilter | None]:
        """Topics (besides the rounds topic) this role reads, each with an optional partition filter."""

    @abstractmethod
    def latest_announcement(self) -> RoundAnnouncement | None:
        """The latest round announcement the state machine knows."""

    @abstractmethod
    async def handle(self, event: LogEvent) -> None:
        """Feed one event to the state machine; raise ``EnvelopeRejected`` to dead-letter it."""

    @abstractmethod
    async def act(self) -> None:
        """Publish whatever the state machine says is due."""

    @abstractmethod
    async def start_outputs(self, stop: asyncio.Event) -> None:
        """Start the publishers (draining what a previous run left)."""

    @abstractmethod
    async def stop_outputs(self) -> None:
        """Drain and close the publishers."""

    def stats(self) -> dict[str, object]:
        """Counters for the stats file."""
        ann = self.latest_announcement()
        return {
            "service": self.name,
            "ready": self.ready,
            "phase": self.phase,
            "round": ann.round_id if ann is not None else 0,
            "accepted": self.reader.accepted,
            "duplicates": self.reader.duplicates,
            "rejected": self.reader.rejected,
        }

    # --- the loop -----------------------------------------------------------------------------------------

    async def _feed(self, events: list[LogEvent]) -> None:
        rounds = self.topics.rounds
        for event in sorted(events, key=lambda e: e.record.topic != rounds):  # rounds first, order kept
            try:
                _require_model_name(event)
                await self.handle(event)
            except EnvelopeRejected as exc:
                await self.reader.reject(event.record, exc)
            except (ValueError, DecodeError) as exc:  # a payload that verifies but does not make sense
                log.warning("%s: %s@%d: %s", self.name, event.record.topic, event.record.offset, exc)
                env = event.envelope
                await self.reader.reject(
                    event.record,
                    EnvelopeRejected(
                        RejectReason.REJECT_REASON_HANDLER_FAILED,
                        f"{type(exc).__name__}: {exc}",
                        producer_id=env.producer_id,
                        seq=env.seq,
                    ),
                )

    async def catch_up(self) -> None:
        """Steps 2-4 of the module docstring."""
        self.phase = "catching up"
        self._rounds_tps = await self.reader.partitions(self.topics.rounds)
        await self.reader.assign(dict.fromkeys(self._rounds_tps))
        await self._feed(await self.reader.read_to_end())
        ann = self.latest_announcement()
        starts = {(o.topic, o.partition): o.offset for o in ann.start_offsets} if ann is not None else {}
        positions: dict[TopicPartition, int | None] = {tp: await self.reader.position(tp) for tp in self._rounds_tps}
        for topic, keep in self.inputs().items():
            for tp in await self.reader.partitions(topic):
                if keep is None or keep(tp):
                    positions[tp] = starts.get((tp.topic, tp.partition))
        await self.reader.assign(positions)
        await self._feed(await self.reader.read_to_end())
        self.ready = True
        self.phase = "running"

    async def rounds_read_up(self) -> bool:
        """Whether the rounds topic has been read up to its end as of now (a round not known by then
        was never announced before now)."""
        ends = await self.reader.end_offsets(self._rounds_tps)
        return await self.reader.reached(ends)

    async def hold(self, point: str, round_id: int) -> None:
        """Test hook: at ``point`` of ``round_id``, if asked to, stop here until killed."""
        if self._hold_at == f"{point}:{round_id}":
            self.phase = f"holding:{point}:{round_id}"
            log.warning("%s: holding at %s of round %d (test hook)", self.name, point, round_id)
            await asyncio.Event().wait()  # never set: the test kills the process here

    async def start(self, stop: asyncio.Event | None = None) -> None:
        """Connect and ship what a previous run left in the outboxes."""
        await self.start_outputs(stop or asyncio.Event())
        await self.reader.start()

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up, then poll and act until ``stop`` (or until :meth:`done`)."""
        await self.catch_up()
        await self.act()
        while not stop.is_set() and not self.done():
            await self._feed(await self.reader.poll(timeout_ms=self._poll_ms))
            await self.act()

    def done(self) -> bool:
        """Whether the role has nothing left to do (the coordinator after its last round)."""
        return False

    async def stop(self) -> None:
        """Drain outputs and disconnect."""
        await self.stop_outputs()
        await self.reader.stop()
