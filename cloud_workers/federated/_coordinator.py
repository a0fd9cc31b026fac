"""The coordinator process: announces rounds, closes them at quorum + deadline, applies the aggregates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import numpy as np
from aiokafka.structs import ConsumerRecord
from numpy.typing import NDArray

from cloud_workers.federated._coordinator_config import CoordinatorConfig
from cloud_workers.federated._coordinator_state import CoordinatorState
from cloud_workers.federated._publish import Publisher, check_producer
from cloud_workers.federated._role import FlIdentities, FlRole, PartitionFilter
from schemas import (
    Chunk,
    ModelVersion,
    PartitionOffset,
    PlainAggregate,
    RejectReason,
    RoundAnnouncement,
    RoundClose,
    UpdateReceipt,
)
from streams import (
    BusMetrics,
    BusSettings,
    EnvelopeRejected,
    FlTopics,
    Keyring,
    LogEvent,
    Reassembler,
)
from streams.federated import ChunkRecords

__all__ = ["Coordinator"]

_MODEL_SCHEMA = ModelVersion.DESCRIPTOR.full_name


def _unexpected(event: LogEvent) -> EnvelopeRejected:
    env = event.envelope
    return EnvelopeRejected(
        RejectReason.REJECT_REASON_MALFORMED,
        f"{env.schema} does not belong on {event.record.topic}",
        producer_id=env.producer_id,
        seq=env.seq,
    )


class Coordinator(FlRole):
    """Wiring around :class:`CoordinatorState` (see ``cloud_workers.federated._role`` for the loop)."""

    def __init__(
        self,
        config: CoordinatorConfig,
        initial_params: NDArray[np.float64],
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        *,
        topics: FlTopics | None = None,
        ids: FlIdentities | None = None,
        chunk_size: int = 256 * 1024,
        hold_at: str | None = None,
        chunk_ttl_s: float = 600.0,
    ) -> None:
        super().__init__(
            ids.coordinator if ids else "fl-coordinator",
            settings,
            keyring,
            metrics,
            topics or FlTopics(),
            hold_at=hold_at,
        )
        self.ids = ids or FlIdentities()
        self.state = CoordinatorState(config, initial_params)
        self._chunk_size = chunk_size
        self._key = config.model_name.encode()
        self._model_chunks: ChunkRecords[ConsumerRecord[bytes, bytes]] = ChunkRecords("model version")
        self._reassembler = Reassembler(ttl_s=chunk_ttl_s, on_incomplete=self._model_chunks.on_incomplete)
        base = settings.state_dir / self.ids.coordinator
        self.rounds_out = Publisher(base / "rounds.db", self.ids.coordinator, settings, keyring, metrics)
        self.models_out = Publisher(base / "models.db", self.ids.models, settings, keyring, metrics)

    def inputs(self) -> Mapping[str, PartitionFilter | None]:
        return {self.topics.models: None, self.topics.sums: None, self.topics.aggregates: None}

    def latest_announcement(self) -> RoundAnnouncement | None:
        rnd = self.state.round
        return rnd.announcement if rnd is not None else None

    async def start_outputs(self, stop: asyncio.Event) -> None:
        await self.rounds_out.start(stop)
        await self.models_out.start(stop)

    async def stop_outputs(self) -> None:
        await self.models_out.stop()
        await self.rounds_out.stop()

    def done(self) -> bool:
        return self.ready and self.state.finished

    async def handle(self, event: LogEvent) -> None:
        topic, msg = event.record.topic, event.message
        if topic == self.topics.rounds:
            check_producer(event, self.keyring, {self.ids.coordinator}, "rounds")
            if isinstance(msg, RoundAnnouncement):
                self.state.on_announcement(msg)
            elif isinstance(msg, RoundClose):
                self.state.on_close(msg)
            else:
                raise _unexpected(event)
        elif topic == self.topics.models:
            check_producer(event, self.keyring, {self.ids.models}, "model versions")
            if isinstance(msg, Chunk) and msg.payload_schema == _MODEL_SCHEMA:
                self._model_chunks.note(bytes(msg.payload_id), event.envelope.producer_id, event.record)
                assembled = self._reassembler.add(msg)
                if assembled is not None:
                    self._model_chunks.done(assembled.payload_id)
                    mv = ModelVersion.FromString(assembled.payload)
                    if not mv.model_name:
                        raise EnvelopeRejected(
                            RejectReason.REJECT_REASON_MALFORMED,
                            "a model version names no model",
                            producer_id=event.envelope.producer_id,
                            seq=event.envelope.seq,
                        )
                    self.state.on_model(mv)
            elif isinstance(msg, ModelVersion):
                self.state.on_model(msg)
            else:
                raise _unexpected(event)
        elif topic == self.topics.sums:
            check_producer(event, self.keyring, self.ids.aggregators, "receipts")
            if isinstance(msg, UpdateReceipt):
                self.state.on_receipt(msg)
        elif topic == self.topics.aggregates:
            check_producer(event, self.keyring, self.ids.keyholders, "aggregates")
            if isinstance(msg, PlainAggregate) and not self.state.on_aggregate(msg):
                rnd = self.state.round
                if (
                    rnd is not None
                    and msg.round_id == rnd.announcement.round_id
                    and msg.model_name == rnd.spec.model_name
                ):
                    raise EnvelopeRejected(
                        RejectReason.REJECT_REASON_INVALID_UPDATE,
                        f"aggregate of round {msg.round_id} shard {msg.shard} does not fit the round's close",
                        producer_id=event.envelope.producer_id,
                        seq=event.envelope.seq,
                    )
        if self.state.round is not None:
            self.fl.current_round(self.state.round.announcement.round_id)

    async def _start_offsets(self) -> list[PartitionOffset]:
        out: list[PartitionOffset] = []
        for topic in (self.topics.updates, self.topics.sums, self.topics.aggregates):
            tps = await self.reader.partitions(topic)
            for tp, end in sorted((await self.reader.end_offsets(tps)).items()):
                out.append(PartitionOffset(topic=tp.topic, partition=tp.partition, offset=end))
        return out

    async def _publish_model(self, mv: ModelVersion) -> None:
        await self.models_out.put(
            self.models_out.chunked(self.topics.models, self._key, mv, chunk_size=self._chunk_size)
        )

    async def _dead_letter_incomplete(self) -> None:
        """Every chunk of a model version given up on incomplete goes to the dead-letter topic."""
        for lost in self._model_chunks.given_up():
            exc = EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, lost.detail, producer_id=lost.producer_id)
            for record in lost.records:
                await self.reader.reject(record, exc)

    async def act(self) -> None:
        await self._dead_letter_incomplete()
        state = self.state
        if (mv := state.initial_model_due()) is not None:
            await self._publish_model(mv)
        if state.stats_announcement_due():
            ann = state.announce_stats(time.time_ns(), await self._start_offsets())
            await self.rounds_out.put([self.rounds_out.request(self.topics.rounds, self._key, ann)])
            self.fl.round_event("announced")
            self.phase = "statistics round: collecting"
        if (round_id := state.announcement_due()) is not None:
            ann = state.announce(round_id, time.time_ns(), await self._start_offsets())
            await self.rounds_out.put([self.rounds_out.request(self.topics.rounds, self._key, ann)])
            self.fl.round_event("announced")
            self.phase = f"round {round_id}: collecting"
        rnd = state.round
        if rnd is None:
            return
        round_id = rnd.announcement.round_id
        if state.close_ready(time.time_ns()):
            await self.hold("before_close", round_id)
        if (close := state.close_due(time.time_ns())) is not None:
            await self.rounds_out.put([self.rounds_out.request(self.topics.rounds, self._key, close)])
            self.fl.round_event("closed")
            self.phase = f"round {round_id}: closed with {len(close.contributors)}"
        if state.apply_ready():
            await self.hold("before_apply", round_id)
        if (mv := state.stats_apply_due(time.time_ns())) is not None:
            await self._publish_model(mv)
            self.fl.round_event("applied")
            self.phase = "statistics round: standardiser published with version 0"
        if (mv := state.apply_due(time.time_ns())) is not None:
            await self._publish_model(mv)
            self.fl.round_event("applied")
            self.fl.round_seconds(mv.metrics["round_s"])
            self.phase = f"round {round_id}: applied"

    def stats(self) -> dict[str, object]:
        out = super().stats()
        model = self.state.model
        out["model_version"] = model.version if model is not None else -1
        out["finished"] = self.state.finished
        return out
