"""The federated-learning client process at a hospital: wraps any ``LocalTrainer`` and the update codec.

It reads round announcements (``fl.rounds.v1``) and model versions (``fl.models.v1``) from the beginning
(no consumer group: it starts at once), and for each round it is invited to, once it holds the announced
model version, trains, encodes (``_client_core``), and writes the chunked, signed update envelopes to its
durable outbox in one transaction; the sender ships them to ``fl.updates.v1`` under ``model/round/shard``.
Paillier obfuscators are precomputed in a background thread between rounds. Its residual, the rounds it
sent and its privacy accountant are stored in the outbox database in the same transaction as the update
(``_client_state``), so a restarted client neither sends a round twice, nor forgets a round it sent, its error
feedback or its privacy spending. A trainer on raw features first sends its moments in the statistics round
(round 0) and trains once model version 0 brings the federation's standardiser. Every random choice is keyed by
the hospital's secret (``fl/client_secret.json``
in its keys directory, made by ``fl keys export --role client``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiokafka.structs import ConsumerRecord
from numpy.typing import NDArray

from edge_agent.federated._client_core import ClientCore
from edge_agent.federated._client_state import load_client_state, load_outbox_state, put_with_state
from edge_agent.federated._trainer import LocalTrainer
from schemas import Chunk, ModelVersion, RejectReason, RoundAnnouncement
from streams import (
    BusMetrics,
    BusSettings,
    ChainState,
    EnvelopeRejected,
    FlTopics,
    Keyring,
    LogEvent,
    LogReader,
    Outbox,
    OutboxSender,
    Reassembler,
    SealRequest,
    seal,
    split_payload,
)
from streams.federated import (
    STATS_ROUND,
    ChunkRecords,
    ObfuscatorPool,
    PublicKey,
    RoundSpec,
    key_id,
    load_client_secret,
    update_key,
)

__all__ = ["ClientConfig", "FlClient"]

log = logging.getLogger(__name__)

_MODEL_SCHEMA = ModelVersion.DESCRIPTOR.full_name


@dataclass(kw_only=True)
class ClientConfig:
    """Who this client is and where it talks."""

    client_id: str
    hospital_id: str
    model_name: str
    #: The hospital's DP secret; None: read it from the keys directory (``fl/client_secret.json``).
    secret: bytes | None = None
    topics: FlTopics = field(default_factory=FlTopics)
    #: Producers allowed to announce rounds and to publish model versions.
    coordinator_id: str = "fl-coordinator"
    models_id: str = "fl-coordinator-models"
    chunk_size: int = 64 * 1024
    #: Seconds to wait before sending a round's update (simulates a slow hospital: a straggler).
    delays: Mapping[int, float] = field(default_factory=dict)
    #: Test hook: ``before_put:<round>`` or ``after_put:<round>`` makes the client stop there until killed.
    hold_at: str | None = None
    #: Seconds a chunked model version may stay incomplete before its chunks are dead-lettered.
    chunk_ttl_s: float = 600.0


def _decode_weights(mv: ModelVersion) -> NDArray[np.float64]:
    data = bytes(mv.weights)
    if mv.format != "f64le" or len(data) % 8:
        raise ValueError(f"unsupported weights format {mv.format!r}")
    return np.frombuffer(data, dtype="<f8").astype(np.float64)


class FlClient:
    """One hospital's client (see the module docstring)."""

    def __init__(
        self,
        config: ClientConfig,
        trainer: LocalTrainer,
        public_key: PublicKey,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
    ) -> None:
        self.config = config
        self.keyring = keyring
        self.public_key = public_key
        secret = config.secret if config.secret is not None else load_client_secret(settings.keys_dir)
        self.core = ClientCore(config.client_id, trainer, secret)
        self.reader = LogReader(settings, keyring, metrics, worker=config.client_id)
        self._signing_key = keyring.signing_key(config.client_id)
        self.outbox = Outbox(settings.state_dir / config.client_id / "outbox.db", signing_key=self._signing_key)
        legacy = settings.state_dir / config.client_id / "client_state.npz"  # before state moved into the outbox
        self.restored = load_outbox_state(self.core, self.outbox) or load_client_state(self.core, legacy)
        self.sender = OutboxSender(self.outbox, settings, metrics)
        self.pool = ObfuscatorPool(public_key)
        self._filling: Any = None
        self._model_chunks: ChunkRecords[ConsumerRecord[bytes, bytes]] = ChunkRecords("model version")
        self._reassembler = Reassembler(ttl_s=config.chunk_ttl_s, on_incomplete=self._model_chunks.on_incomplete)
        self.announcement: RoundAnnouncement | None = None
        self.ready = False
        self.rounds_sent = 0
        self.bytes_per_update = 0
        self.epsilon = 0.0
        self.last_metrics: dict[str, float] = {}
        self._closed = False
        self._depth = 0

    async def start(self) -> None:
        """Connect; read the rounds and models topics from the beginning."""
        await self.sender.start()
        await self.reader.start()
        tps = [*await self.reader.partitions(self.config.topics.rounds)]
        tps += await self.reader.partitions(self.config.topics.models)
        await self.reader.assign(dict.fromkeys(tps))

    async def stop(self, drain_s: float = 10.0) -> None:
        """Ship what is left in the outbox (up to ``drain_s``) and disconnect."""
        await self.sender.drain(drain_s)
        await self.sender.stop()
        await self.reader.stop()
        self._depth = self.outbox.depth()[0]
        self.outbox.close()
        self._closed = True

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up with the log, then take part in every round this client is invited to."""
        for event in await self.reader.read_to_end():
            await self._handle(event)
        self.ready = True
        while not stop.is_set():
            await self._maybe_train()
            for event in await self.reader.poll(timeout_ms=100):
                await self._handle(event)

    async def _handle(self, event: LogEvent) -> None:
        try:
            self._on_event(event)
        except (EnvelopeRejected, ValueError) as exc:
            rej = (
                exc
                if isinstance(exc, EnvelopeRejected)
                else EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, str(exc))
            )
            await self.reader.reject(event.record, rej)
        for lost in self._model_chunks.given_up():  # a model version given up incomplete: every chunk it had
            why = EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, lost.detail, producer_id=lost.producer_id)
            for record in lost.records:
                await self.reader.reject(record, why)

    def _on_event(self, event: LogEvent) -> None:
        env, msg, topics = event.envelope, event.message, self.config.topics
        if isinstance(msg, RoundAnnouncement | ModelVersion) and not msg.model_name:
            raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, f"{env.schema} names no model")
        if event.record.topic == topics.rounds:
            if env.producer_id != self.config.coordinator_id:
                raise EnvelopeRejected(RejectReason.REJECT_REASON_UNAUTHORIZED, f"{env.producer_id} may not announce")
            if (
                isinstance(msg, RoundAnnouncement)
                and msg.model_name == self.config.model_name
                and (self.announcement is None or msg.round_id > self.announcement.round_id)
            ):
                self.announcement = msg
        elif event.record.topic == topics.models:
            if env.producer_id != self.config.models_id:
                raise EnvelopeRejected(RejectReason.REJECT_REASON_UNAUTHORIZED, f"{env.producer_id} may not publish")
            mv = msg if isinstance(msg, ModelVersion) else None
            if isinstance(msg, Chunk) and msg.payload_schema == _MODEL_SCHEMA:
                self._model_chunks.note(bytes(msg.payload_id), env.producer_id, event.record)
                assembled = self._reassembler.add(msg)
                if assembled is not None:
                    self._model_chunks.done(assembled.payload_id)
                mv = ModelVersion.FromString(assembled.payload) if assembled is not None else None
            if mv is not None and not mv.model_name:
                raise EnvelopeRejected(RejectReason.REJECT_REASON_MALFORMED, "a model version names no model")
            if mv is not None and mv.model_name == self.config.model_name:
                self.core.on_model(mv, _decode_weights(mv))

    def _fill_pool(self, spec: RoundSpec) -> None:
        want = 2 * spec.num_ciphertexts
        if len(self.pool) < want and (self._filling is None or not self._filling.is_alive()):
            self._filling = self.pool.fill_in_background(want - len(self.pool))

    async def _maybe_train(self) -> None:
        ann = self.announcement
        if ann is None or not self.core.ready_for(ann):
            return
        spec = RoundSpec.from_announcement(ann)
        if ann.paillier_key_id != key_id(self.public_key):
            log.error("%s: round %d uses key %s, we hold %s", self.config.client_id, ann.round_id,
                      ann.paillier_key_id, key_id(self.public_key))  # fmt: skip
            self.core.last_round = ann.round_id
            self.core.stats_sent = self.core.stats_sent or ann.round_id == STATS_ROUND
            return
        self._fill_pool(spec)
        try:
            if ann.round_id == STATS_ROUND:
                quantized = self.core.stats_update(ann)
            else:
                quantized = await asyncio.to_thread(self.core.quantize, ann)
        except ValueError as exc:  # e.g. the model does not fit this trainer: skip the round, keep running
            log.error("%s: cannot take part in round %d: %s", self.config.client_id, ann.round_id, exc)
            if ann.round_id == STATS_ROUND:
                self.core.stats_sent = True  # never retried: the same moments would be refused again
            self.core.last_round = ann.round_id
            return
        updates = await asyncio.to_thread(self.core.encrypt, ann, quantized, self.public_key, self.pool)
        requests: list[SealRequest] = []
        size, topic, hospital = self.config.chunk_size, self.config.topics.updates, self.config.hospital_id
        for update in updates:
            key = update_key(ann.model_name, ann.round_id, update.shard)
            payload = update.SerializeToString(deterministic=True)
            chunks = split_payload(payload, schema=update.DESCRIPTOR.full_name, chunk_size=size)
            requests.extend(SealRequest(topic, key, chunk, hospital, None) for chunk in chunks)
        delay = self.config.delays.get(ann.round_id, 0.0)
        if delay > 0:
            log.warning("%s: holding round %d's update for %.1fs", self.config.client_id, ann.round_id, delay)
            await asyncio.sleep(delay)
        await self._hold("before_put", ann.round_id)
        await asyncio.to_thread(put_with_state, self.outbox, self.core, requests)  # state + update: one commit
        await self._hold("after_put", ann.round_id)
        self.sender.notify()
        self._fill_pool(spec)
        if ann.round_id == STATS_ROUND:
            return
        self.rounds_sent += 1
        self.bytes_per_update = self._wire_bytes(requests)
        self.epsilon = quantized.result.epsilon
        self.last_metrics = dict(quantized.result.metrics)

    async def _hold(self, point: str, round_id: int) -> None:
        if self.config.hold_at == f"{point}:{round_id}":
            log.warning("%s: holding at %s of round %d (test hook)", self.config.client_id, point, round_id)
            await asyncio.Event().wait()  # never set: the test kills the process here

    def _wire_bytes(self, requests: list[SealRequest]) -> int:
        """Bytes of the sealed envelopes one update travels in."""
        total = 0
        for req in requests:
            rec, _ = seal(req.message, signing_key=self._signing_key, chain=ChainState(), hospital_id=req.hospital_id,
                          data_key=None)  # fmt: skip
            total += len(rec.SerializeToString())
        return total

    def stats(self) -> dict[str, object]:
        """Counters for the stats file."""
        return {
            "service": self.config.client_id,
            "ready": self.ready,
            "round": self.core.last_round,
            "rounds_sent": self.rounds_sent,
            "late_rounds": list(self.core.late_rounds),
            "bytes_per_update": self.bytes_per_update,
            "epsilon": self.epsilon,
            "outbox_depth": self._depth if self._closed else self.outbox.depth()[0],
            "rejected": self.reader.rejected,
        }
