"""The aggregator process: holds ONLY the Paillier public key; adds ciphertexts per shard.

Instance ``i`` of ``n`` reads the partitions ``p`` of the updates topic with ``p % n == i`` and adds up the
shards whose key (``model/round/shard``) hashes there, so aggregation scales out by shard across
partitions. It refuses to start when its keys directory holds a Paillier private key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from cloud_workers.federated._aggregator_state import AggregatorState, UpdateVerdict
from cloud_workers.federated._publish import Publisher, check_producer
from cloud_workers.federated._role import FlIdentities, FlRole, PartitionFilter
from cloud_workers.federated._updates import AssembledUpdate, UpdateAssembler
from schemas import EncryptedSum, RejectReason, RoundAnnouncement, RoundClose, UpdateReceipt
from streams import BusMetrics, BusSettings, EnvelopeRejected, FlTopics, Keyring, LogEvent
from streams.federated import PublicKey, paillier_private_files, update_key

__all__ = ["Aggregator", "partition_for"]


def partition_for(key: bytes, num_partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) puts ``key`` in."""
    digest: int = murmur2(key)
    return (digest & 0x7FFFFFFF) % num_partitions


class Aggregator(FlRole):
    """Wiring around :class:`AggregatorState` (see ``cloud_workers.federated._role`` for the loop)."""

    def __init__(
        self,
        model_name: str,
        aggregator_id: str,
        public_key: PublicKey,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        *,
        instance: int = 0,
        instances: int = 1,
        topics: FlTopics | None = None,
        ids: FlIdentities | None = None,
        hold_at: str | None = None,
        chunk_ttl_s: float = 600.0,
    ) -> None:
        private = paillier_private_files(settings.keys_dir)
        if private:
            raise RuntimeError(f"the aggregator must not hold the Paillier private key; found {private[0]}")
        if not 0 <= instance < instances:
            raise ValueError(f"instance must be in [0, {instances})")
        super().__init__(aggregator_id, settings, keyring, metrics, topics or FlTopics(), hold_at=hold_at)
        self.ids = ids or FlIdentities()
        self.instance, self.instances = instance, instances
        self._num_update_partitions = 0
        self.state = AggregatorState(model_name, public_key, self.owns)
        self.assembler = UpdateAssembler(ttl_s=chunk_ttl_s)  # an update incomplete this long is dead-lettered
        self.out = Publisher(
            settings.state_dir / aggregator_id / "outbox.db", aggregator_id, settings, keyring, metrics
        )
        self.pending: list[AssembledUpdate] = []

    def owns(self, round_id: int, shard: int) -> bool:
        """Whether shard ``shard`` of ``round_id`` lands in one of this instance's partitions."""
        key = update_key(self.state.model_name, round_id, shard)
        return partition_for(key, self._num_update_partitions) % self.instances == self.instance

    def _mine(self, tp: TopicPartition) -> bool:
        partition: int = tp.partition
        return partition % self.instances == self.instance

    def inputs(self) -> Mapping[str, PartitionFilter | None]:
        return {self.topics.updates: self._mine, self.topics.sums: None}

    def latest_announcement(self) -> RoundAnnouncement | None:
        rnd = self.state.rounds.get(self.state.latest)
        return rnd.announcement if rnd is not None else None

    async def start_outputs(self, stop: asyncio.Event) -> None:
        await self.out.start(stop)

    async def stop_outputs(self) -> None:
        await self.out.stop()

    async def start(self, stop: asyncio.Event | None = None) -> None:
        await super().start(stop)
        self._num_update_partitions = len(await self.reader.partitions(self.topics.updates))

    async def handle(self, event: LogEvent) -> None:
        topic, msg = event.record.topic, event.message
        if topic == self.topics.rounds:
            check_producer(event, self.keyring, {self.ids.coordinator}, "rounds")
            if isinstance(msg, RoundAnnouncement):
                self.state.on_announcement(msg)
            elif isinstance(msg, RoundClose):
                self.state.on_close(msg)
        elif topic == self.topics.sums:
            if event.envelope.producer_id != self.name:
                return  # another instance's output
            if isinstance(msg, UpdateReceipt):
                self.state.on_receipt(msg)
            elif isinstance(msg, EncryptedSum):
                self.state.on_sum(msg)
        elif topic == self.topics.updates:
            update = self.assembler.add(event)
            if update is not None and self._accept(update) is UpdateVerdict.PENDING:
                self.pending.append(update)

    def _accept(self, update: AssembledUpdate) -> UpdateVerdict:
        try:
            verdict = self.state.on_update(update)
        except EnvelopeRejected as exc:
            self.fl.update("late" if exc.reason == RejectReason.REJECT_REASON_STALE else "rejected")
            raise
        if verdict not in (UpdateVerdict.PENDING, UpdateVerdict.IGNORED):
            self.fl.update(verdict.value)
        return verdict

    async def _dead_letter_incomplete(self) -> None:
        """Every chunk of an update the assembler gave up on goes to the dead-letter topic (never dropped)."""
        for lost in self.assembler.given_up():
            self.fl.update("rejected")
            exc = EnvelopeRejected(RejectReason.REJECT_REASON_CHUNK_INVALID, lost.detail, producer_id=lost.producer_id)
            for record in lost.records:
                await self.reader.reject(record, exc)

    async def act(self) -> None:
        await self._dead_letter_incomplete()
        if self.pending and await self.rounds_read_up():
            pending, self.pending = self.pending, []
            for update in pending:
                try:
                    if self._accept(update) is UpdateVerdict.PENDING:
                        self.fl.update("rejected")
                        raise EnvelopeRejected(
                            RejectReason.REJECT_REASON_WRONG_ROUND,
                            f"round {update.update.round_id} was never announced",
                            producer_id=update.producer_id,
                        )
                except EnvelopeRejected as exc:
                    await self.reader.reject(update.record, exc)
        receipts = self.state.receipts_due()
        if receipts:
            model = self.state.model_name
            await self.out.put(
                [self.out.request(self.topics.sums, update_key(model, r.round_id, r.shard), r) for r in receipts]
            )
        for s in self.state.sums_due():
            await self.hold("before_sum", s.round_id)
            key = update_key(self.state.model_name, s.round_id, s.shard)
            await self.out.put([self.out.request(self.topics.sums, key, s)])
            self.phase = f"round {s.round_id}: summed shard {s.shard}"

    def stats(self) -> dict[str, object]:
        out = super().stats()
        out["updates_held"] = len(self.state.updates)
        out["pending"] = len(self.pending)
        return out
