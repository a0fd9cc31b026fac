"""Audit replay finds a tampered record at its exact offset."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaProducer

from cloud_workers.audit import replay_topic
from schemas import IdentityCheck, MedicalRecord
from streams import BusSettings, ChainState, Keyring, TopicSpec, apply_topics, seal

pytestmark = pytest.mark.broker


async def _publish(settings: BusSettings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=b"k1")
    finally:
        await producer.stop()


def _chain(keyring: Keyring, n: int) -> list[MedicalRecord]:
    out, state = [], ChainState()
    for i in range(n):
        rec, state = seal(
            IdentityCheck(kiosk_id="k1", hospital_id="H1", skew_ns=i),
            signing_key=keyring.signing_key("k1"),
            chain=state,
            hospital_id="H1",
            data_key=keyring.latest_data_key("H1"),
        )
        out.append(rec)
    return out


@pytest.mark.parametrize("tampered_at", [0, 7, 19])
async def test_replay_reports_the_exact_offset(keyring: Keyring, settings: BusSettings, tampered_at: int) -> None:
    topic = f"test.audit.{uuid.uuid4().hex[:8]}"
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="t", partitions=1)])
    recs = _chain(keyring, 20)
    values = [r.SerializeToString() for r in recs]
    bad = MedicalRecord()
    bad.CopyFrom(recs[tampered_at])
    bad.encrypted_data = bad.encrypted_data[:-1] + bytes([bad.encrypted_data[-1] ^ 1])
    values[tampered_at] = bad.SerializeToString()
    await _publish(settings, topic, values)
    report = await replay_topic(settings, keyring, topic)
    assert report.records == 20
    assert report.first_bad is not None
    assert (report.first_bad["partition"], report.first_bad["offset"]) == (0, tampered_at)
    assert report.first_bad["reason"] == "bad_signature"
    # After the forged record the chain cannot continue: the next one is flagged as a gap, not silently accepted.
    if tampered_at < 19:
        assert any(b["offset"] == tampered_at + 1 for b in report.bad_offsets)


async def test_clean_topic_and_offset_ranges(keyring: Keyring, settings: BusSettings) -> None:
    topic = f"test.audit.{uuid.uuid4().hex[:8]}"
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="t", partitions=1)])
    await _publish(settings, topic, [r.SerializeToString() for r in _chain(keyring, 10)])
    full = await replay_topic(settings, keyring, topic)
    assert (full.records, full.verified, full.bad, full.first_bad) == (10, 10, 0, None)
    part = await replay_topic(settings, keyring, topic, from_offset=3, to_offset=8)
    assert (part.records, part.bad) == (5, 0)
