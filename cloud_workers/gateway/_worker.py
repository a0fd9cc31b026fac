"""The gateway: verifies kiosk envelopes without decrypting them, audits, and routes each to its hospital.

It holds public keys and its own signing key only, never a hospital data key. Output (the original
envelope bytes to ``hospital.<id>.events.v1`` plus a gateway-signed ``AuditRecord`` to ``audit.v1``)
goes through a durable outbox before input offsets are committed: a crash or broker outage delays
events, it never loses them, and re-processing after a crash yields duplicates that consumers drop.

Its chain state (every kiosk stream's last seq and hash) and the input offsets it reflects are written in
the same SQLite transaction as the batch's forwards and audit records, so after a restart it resumes at
exactly the next record with its chains intact: an old envelope replayed while it was down is
``replayed_seq``, and genuine traffic flows on with no gap.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from cloud_workers.gateway._transactional import ChainStateTopic, TransactionalOutput
from schemas import AuditRecord
from streams import (
    AUDIT,
    KIOSK_IDENTITY,
    KIOSK_INFERENCE,
    BusMetrics,
    BusSettings,
    ChainState,
    ConsumerConfig,
    EnvelopeConsumer,
    Keyring,
    Outbox,
    OutboxSender,
    SealRequest,
    VerifiedEvent,
    hospital_topic,
    run_consumer,
)
from streams._chain import ChainLink
from streams._chain_store import ChainStore

__all__ = ["Gateway", "GatewayConfig"]

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class GatewayConfig:
    gateway_id: str = "gateway-1"
    group_id: str = "medkiosk-gateway"
    topics: list[str] = field(default_factory=lambda: [KIOSK_IDENTITY.name, KIOSK_INFERENCE.name])
    #: Outbox database; defaults to ``<state_dir>/<gateway_id>/outbox.db``.
    outbox_path: Path | None = None
    #: Exactly-once output through Kafka transactions (Apache Kafka; see ``_transactional``) instead of the
    #: outbox. Brokers without transactions (the embedded Tansu) need the default, the outbox path.
    transactional: bool = False
    #: Sign each batch's audit records once (a Merkle root; every record carries its inclusion proof and
    #: still verifies on its own, docs/ENVELOPE.md §3a) instead of one ECDSA signature per record.
    batch_sign: bool = True


class Gateway:
    def __init__(self, config: GatewayConfig, settings: BusSettings, keyring: Keyring, metrics: BusMetrics) -> None:
        if keyring.data_key_ids:
            raise RuntimeError(
                "the gateway must not hold hospital data keys; give it a keys dir made by "
                "`medkiosk keys export` without --hospital"
            )
        self.config = config
        path = config.outbox_path or settings.state_dir / config.gateway_id / "outbox.db"
        self.outbox = Outbox(path, signing_key=keyring.signing_key(config.gateway_id), batch_sign=config.batch_sign)
        self.outbox.query(ChainStore.ensure_schema)
        self.sender = OutboxSender(self.outbox, settings, metrics)
        # Keyed by the gateway's own id: its audit chain stays in one partition, in order.
        self._audit_key = config.gateway_id.encode()
        self._pending_raw: list[tuple[str, bytes, bytes]] = []
        self._pending_audit: list[SealRequest] = []
        self.routed = 0
        self._settings = settings
        self._txn: TransactionalOutput | None = None
        if config.transactional:
            self._txn = TransactionalOutput(
                settings,
                keyring.signing_key(config.gateway_id),
                group_id=config.group_id,
                transactional_id=f"medkiosk-{config.gateway_id}",
                audit_chain=ChainState(),
                batch_sign=config.batch_sign,
            )
        self.consumer = EnvelopeConsumer(
            ConsumerConfig(
                topics=config.topics,
                group_id=config.group_id,
                worker=config.gateway_id,
                decrypt=False,
                writer_commits_offsets=config.transactional,
            ),
            settings,
            keyring,
            metrics,
            self._route,
            state_writer=self._commit_transaction if config.transactional else self._flush,
            on_assigned=self._reload_chains if config.transactional else None,
            initial_state=([], {}) if config.transactional else self.outbox.query(ChainStore.read),
        )

    async def _route(self, event: VerifiedEvent) -> None:
        env = event.envelope
        target = hospital_topic(env.hospital_id)
        record = event.record
        self._pending_raw.append((target, record.key or env.producer_id.encode(), record.value or b""))
        audit = AuditRecord(
            source_topic=record.topic,
            source_partition=record.partition,
            source_offset=record.offset,
            producer_id=env.producer_id,
            seq=env.seq,
            hospital_id=env.hospital_id,
            schema=env.schema,
            key_id=env.key_id,
            timestamp=env.timestamp,
            signing_key_version=env.signature.v,
            envelope_hash=event.digest,
            prev_hash=env.prev_hash,
            routed_to=target,
            observed_at=time.time_ns(),
            stream=env.stream,
            chain_reset=event.reset,
        )
        self._pending_audit.append(
            SealRequest(topic=AUDIT.name, key=self._audit_key, message=audit, hospital_id="", data_key=None)
        )

    async def _flush(
        self, links: list[ChainLink], forgotten: list[tuple[str, str]], offsets: dict[tuple[str, int], int]
    ) -> None:
        """Forwards, audit records, chain links and input offsets of one batch: one durable transaction."""
        raw, audits = self._pending_raw, self._pending_audit

        def state(db: sqlite3.Connection) -> None:
            ChainStore.write(db, links, offsets, forgotten)

        await asyncio.to_thread(self.outbox.put, audits, raw, also=state)
        self._pending_raw, self._pending_audit = [], []
        self.routed += len(raw)
        self.sender.notify()

    async def _commit_transaction(
        self, links: list[ChainLink], forgotten: list[tuple[str, str]], offsets: dict[tuple[str, int], int]
    ) -> None:
        """Transactional mode: the batch's forwards, audits, links and offsets as one Kafka transaction,
        retried (as a whole, after an abort) until the broker takes it or the gateway stops."""
        assert self._txn is not None
        raw, audits = self._pending_raw, self._pending_audit
        backoff = 0.1
        while True:
            try:
                await self._txn.start()
                await self._txn.commit(raw, audits, links, offsets)
                log.debug("committed %d forwards, offsets %s", len(raw), offsets)
                break
            except (KafkaError, TimeoutError, OSError) as exc:
                log.warning("gateway transaction failed (%s: %s); retrying", type(exc).__name__, exc)
                if self.consumer.stopping:
                    raise
                await asyncio.sleep(backoff)
                backoff = min(2 * backoff, 2.0)
        self._pending_raw, self._pending_audit = [], []
        self.routed += len(raw)

    async def _reload_chains(self, assigned: list[TopicPartition]) -> None:
        """On every assignment, take the links the group committed (another instance may have moved on)."""
        links, audit = await ChainStateTopic(self._settings).load()
        self.consumer.chain.restore(links)
        if self._txn is not None:
            self._txn.audit_chain = audit.get(self.config.gateway_id, self._txn.audit_chain)

    async def start(self) -> None:
        if self._txn is not None:
            # Fence a previous incarnation first: its open transaction would hold the state topic's last
            # stable offset back, and read_committed state could not be read to the end.
            await self._txn.start()
            links, audit = await ChainStateTopic(self._settings).load()
            self.consumer.chain.restore(links)
            self._txn.audit_chain = audit.get(self.config.gateway_id, ChainState())
        await self.sender.start()
        await self.consumer.start()

    async def run(self, stop: asyncio.Event) -> None:
        await run_consumer(self.consumer, stop)

    async def stop(self, drain_s: float = 10.0) -> None:
        await self.consumer.stop()
        if self._txn is not None:
            await self._txn.stop()
        await self.sender.drain(drain_s)
        await self.sender.stop()
        self.outbox.close()

    def stats(self) -> dict[str, int | str]:
        depth, _ = self.outbox.depth()
        return {
            "service": self.config.gateway_id,
            "ready": self.consumer.assigned.is_set(),
            "accepted": self.consumer.accepted,
            "routed": self.routed,
            "duplicates": self.consumer.duplicates,
            "rejected": self.consumer.rejected,
            "chain_resets": self.consumer.resets,
            "outbox_depth": depth,
        }
