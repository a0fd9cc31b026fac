"""What every FL role shares around the log: a durable, signed publisher and a producer allow-list."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from pathlib import Path

from google.protobuf.message import Message

from schemas import RejectReason
from streams import (
    BusMetrics,
    BusSettings,
    DataKey,
    EnvelopeRejected,
    Keyring,
    LogEvent,
    Outbox,
    OutboxSender,
    SealRequest,
    split_payload,
)

__all__ = ["Publisher", "check_producer"]

log = logging.getLogger(__name__)


def check_producer(event: LogEvent, keyring: Keyring, allowed: Collection[str] | None, what: str) -> None:
    """Reject (UNAUTHORIZED) an envelope whose producer may not send ``what``: not in ``allowed``, or,
    when ``allowed`` is ``None``, not a cloud service (a registered producer without a hospital)."""
    env = event.envelope
    info = keyring.producers.get(env.producer_id)
    ok = env.producer_id in allowed if allowed is not None else info is not None and not info.hospital_id
    if not ok:
        raise EnvelopeRejected(
            RejectReason.REJECT_REASON_UNAUTHORIZED,
            f"{env.producer_id} may not publish {what}",
            producer_id=env.producer_id,
            seq=env.seq,
        )


class Publisher:
    """An outbox sealing with one producer identity, and the sender draining it to the broker.

    ``start()`` first ships whatever a previous run left in the outbox, so that a restarted role reads
    the log only once everything it ever decided is in it.
    """

    def __init__(self, path: Path, producer_id: str, settings: BusSettings, keyring: Keyring, metrics: BusMetrics):
        self.producer_id = producer_id
        self.outbox = Outbox(path, signing_key=keyring.signing_key(producer_id))
        self.sender = OutboxSender(self.outbox, settings, metrics)

    async def start(self, stop: asyncio.Event | None = None) -> None:
        """Start sending, and wait until the outbox left by an earlier run is empty (or ``stop``)."""
        await self.sender.start()
        while not await self.sender.drain(5.0):
            if stop is not None and stop.is_set():
                return
            log.warning("%s: outbox not drained yet (broker unreachable?); still waiting", self.producer_id)

    async def put(self, requests: list[SealRequest]) -> None:
        """Seal and store ``requests`` durably and atomically, then wake the sender."""
        if requests:
            await asyncio.to_thread(self.outbox.put, requests)
            self.sender.notify()

    @staticmethod
    def request(
        topic: str, key: bytes, message: Message, *, hospital_id: str = "", data_key: DataKey | None = None
    ) -> SealRequest:
        """One envelope (signed; encrypted only with ``data_key``)."""
        return SealRequest(topic=topic, key=key, message=message, hospital_id=hospital_id, data_key=data_key)

    @staticmethod
    def chunked(topic: str, key: bytes, message: Message, *, chunk_size: int) -> list[SealRequest]:
        """``message`` split into chunk envelopes, all under ``key`` (one partition, in order)."""
        payload = message.SerializeToString(deterministic=True)
        return [
            SealRequest(topic=topic, key=key, message=chunk, hospital_id="", data_key=None)
            for chunk in split_payload(payload, schema=message.DESCRIPTOR.full_name, chunk_size=chunk_size)
        ]

    def depth(self) -> int:
        """Messages not yet acknowledged by the broker."""
        return self.outbox.depth()[0]

    async def stop(self, drain_s: float = 10.0) -> None:
        """Ship what is left (up to ``drain_s``), then close."""
        await self.sender.drain(drain_s)
        await self.sender.stop()
        self.outbox.close()
