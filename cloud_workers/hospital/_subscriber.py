"""What a hospital system runs: read its own topic, verify, dedupe, decrypt with its own key, emit JSON."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from schemas import RejectReason
from streams import (
    BusMetrics,
    BusSettings,
    ConsumerConfig,
    EnvelopeConsumer,
    EnvelopeRejected,
    Keyring,
    VerifiedEvent,
    hospital_topic,
)

__all__ = ["HospitalSubscriber", "SubscriberConfig", "event_to_json"]


@dataclass(kw_only=True)
class SubscriberConfig:
    hospital_id: str
    group_id: str | None = None
    auto_offset_reset: str = "earliest"


def event_to_json(event: VerifiedEvent) -> dict[str, Any]:
    """One delivered event as a JSON-ready dict (the line ``medkiosk subscribe`` prints)."""
    env, rec = event.envelope, event.record
    assert event.message is not None
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
        "event": MessageToDict(event.message, preserving_proto_field_name=True),
    }


class HospitalSubscriber:
    def __init__(
        self,
        config: SubscriberConfig,
        settings: BusSettings,
        keyring: Keyring,
        metrics: BusMetrics,
        emit: Callable[[dict[str, Any]], None],
    ) -> None:
        self.config = config
        self._emit = emit
        self.delivered = 0
        self.consumer = EnvelopeConsumer(
            ConsumerConfig(
                topics=[hospital_topic(config.hospital_id)],
                group_id=config.group_id or f"hospital-{config.hospital_id}",
                worker=f"subscriber-{config.hospital_id}",
                decrypt=True,
                auto_offset_reset=config.auto_offset_reset,
            ),
            settings,
            keyring,
            metrics,
            self._handle,
        )

    async def _handle(self, event: VerifiedEvent) -> None:
        if event.envelope.hospital_id != self.config.hospital_id:
            raise EnvelopeRejected(
                RejectReason.REJECT_REASON_WRONG_HOSPITAL,
                f"event for {event.envelope.hospital_id} on {self.config.hospital_id}'s topic",
                producer_id=event.envelope.producer_id,
                seq=event.envelope.seq,
            )
        self._emit(event_to_json(event))
        self.delivered += 1

    def stats(self) -> dict[str, Any]:
        return {
            "service": f"subscriber-{self.config.hospital_id}",
            "ready": self.consumer.assigned.is_set(),
            "delivered": self.delivered,
            "duplicates": self.consumer.duplicates,
            "rejected": self.consumer.rejected,
        }


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)
