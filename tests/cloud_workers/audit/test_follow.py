"""``AuditFollower`` (FastStream) on the real broker: verified audit records out as JSON, a forged one
dead-lettered, dead letters shown without their refused bytes."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from faststream.kafka import TestKafkaBroker

from cloud_workers.audit import AuditFollower, AuditFollowerConfig
from schemas import AuditRecord, DeadLetter, MedicalRecord, RejectReason
from streams import BusMetrics, BusSettings, ChainState, Keyring, TopicSpec, apply_topics, seal

pytestmark = pytest.mark.broker


async def test_follow_audit_and_dead_letters(keyring: Keyring, settings: BusSettings) -> None:
    suffix = uuid.uuid4().hex[:8]
    audit_topic, dlq_topic = f"audit.v1.{suffix}", f"dlq.v1.{suffix}"
    await apply_topics(
        settings, [TopicSpec(name=t, key="k", content="t", partitions=1) for t in (audit_topic, dlq_topic)]
    )
    state, records = ChainState(), []
    for i in range(1, 4):
        rec, state = seal(
            AuditRecord(source_topic="kiosk.identity.v1", source_offset=i, producer_id="k1", seq=i, hospital_id="H1"),
            signing_key=keyring.signing_key("gateway-1"),
            chain=state,
            hospital_id="",
            data_key=None,
            stream=audit_topic,
        )
        records.append(rec)
    forged = MedicalRecord()
    forged.CopyFrom(records[2])
    forged.encrypted_data = AuditRecord(source_topic="kiosk.identity.v1", producer_id="k9").SerializeToString()
    letter = DeadLetter(
        source_topic="kiosk.identity.v1", value=b"secret bytes", reason=RejectReason.REJECT_REASON_BAD_SIGNATURE
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for value in (records[0], records[1], forged, records[2]):
            await producer.send_and_wait(audit_topic, value.SerializeToString(), key=b"gateway-1")
        await producer.send_and_wait(dlq_topic, letter.SerializeToString(), key=b"kiosk.identity.v1")
    finally:
        await producer.stop()

    lines: list[dict[str, Any]] = []

    async def emit(obj: dict[str, Any]) -> None:
        lines.append(obj)

    follower = AuditFollower(
        AuditFollowerConfig(group_id=f"auditor-{suffix}", dlq=True, audit_topic=audit_topic, dlq_topic=dlq_topic),
        settings,
        keyring,
        BusMetrics("auditor-test"),
        emit,
    )
    async with TestKafkaBroker(follower.broker, with_real=True):
        deadline = asyncio.get_running_loop().time() + 60
        while sum(follower.audit.outcomes.values()) < 4 or follower.dead_letters_seen < 1:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
        await follower.audit.drain()
    assert follower.audit.outcomes == {"handled": 3, "dead_lettered": 1}
    audits = [line for line in lines if "audit" in line]
    assert [(a["offset"], a["seq"], a["audit"]["seq"]) for a in audits] == [(0, 1, "1"), (1, 2, "2"), (3, 3, "3")]
    assert all(a["signed_by"] == "gateway-1" for a in audits)
    shown = [line for line in lines if "dead_letter" in line]
    assert len(shown) == 1 and shown[0]["reason"] == "bad_signature"
    assert "value" not in shown[0]["dead_letter"]  # the refused bytes are not echoed
