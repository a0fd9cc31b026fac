"""What a hospital system runs: its own topic, verified, deduplicated and decrypted with its own key."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from google.protobuf.json_format import MessageToDict

from cloud_workers.hospital._app import Sink, VerifiedSubscriber, VerifiedSubscriberConfig, kafka_broker
from cloud_workers.hospital._verdict import Accepted
from streams import BusMetrics, BusSettings, Keyring, hospital_topic

__all__ = ["HospitalSubscriber", "SubscriberConfig", "dumps", "event_to_json"]


@dataclass(kw_only=True)
class SubscriberConfig:
    hospital_id: str
    group_id: str | None = None
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    #: Chain state file (default ``<state_dir>/chains/<group>.db``).
    state_path: Path | None = None


def event_to_json(event: Accepted) -> dict[str, Any]:
    """One delivered event as a JSON-ready dict (a line of ``medkiosk subscribe --format json``)."""
    env, rec = event.envelope, event.record
    return {
        "topic": rec.topic,
        "partition": rec.partition,
        "offset": rec.offset,
        "producer_id": env.producer_id,
        "stream": env.stream,
        "seq": env.seq,
        "hospital_id": env.hospital_id,
        "schema": env.schema,
        "key_id": env.key_id,
        "timestamp_ns": env.timestamp,
        "e2e_ms": round((time.time_ns() - env.timestamp) / 1e6, 3),
        "event": None if event.message is None else MessageToDict(event.message, preserving_proto_field_name=True),
    }


def dumps(obj: dict[str, Any]) -> str:
    """Compact, key-sorted JSON (one line)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


class HospitalSubscriber:
    """The FastStream app of one hospital: ``hospital.<id>.events.v1`` in, ``sink`` and ``dlq.v1`` out."""

    def __init__(
        self, config: SubscriberConfig, settings: BusSettings, keyring: Keyring, metrics: BusMetrics, sink: Sink
    ) -> None:
        self.config = config
        topic = hospital_topic(config.hospital_id)
        group = config.group_id or f"hospital-{config.hospital_id}"
        self.broker = kafka_broker(
            settings,
            settings.client_id,
            description="What a hospital consumes: its own events, signed by the kiosks and encrypted for it.",
        )
        self.app = VerifiedSubscriber(
            VerifiedSubscriberConfig(
                topic=topic,
                group_id=group,
                worker=f"subscriber-{config.hospital_id}",
                decrypt=True,
                hospital_id=config.hospital_id,
                auto_offset_reset=config.auto_offset_reset,
                title=topic,
                description=_HOSPITAL_TOPIC_DOC,
                state_path=config.state_path or settings.state_dir / "chains" / f"{group}.db",
            ),
            self.broker,
            settings,
            keyring,
            metrics,
            sink,
        )

    async def start(self) -> None:
        await self.broker.start()

    async def stop(self) -> None:
        self.app.request_stop()
        try:
            await self.app.drain()
            await self.broker.stop()
        finally:
            self.app.close()

    async def __aenter__(self) -> HospitalSubscriber:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def delivered(self) -> int:
        return self.app.handled

    def stats(self) -> dict[str, Any]:
        return self.app.stats()


_HOSPITAL_TOPIC_DOC = (
    "hospital.<hospital_id>.events.v1: every identity check and triage result of one hospital's kiosks, forwarded "
    "by the gateway after it verified them. Key: the kiosk id (UTF-8). No Kafka headers: everything a consumer "
    "needs is in the signed envelope. Encrypted with the hospital's data key (AES-256-GCM); readable by that "
    "hospital's principal only (ACLs). Consumers must verify, dedupe on (producer_id, stream, seq), decrypt, and "
    "send what fails to dlq.v1."
)
