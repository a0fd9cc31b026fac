"""The FastStream hospital app on the real broker: one outcome per record, offsets committed after it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import TestKafkaBroker

from cloud_workers.hospital import (
    Accepted,
    VerifiedSubscriber,
    VerifiedSubscriberConfig,
    kafka_broker,
)
from schemas import DeadLetter, IdentityCheck, MedicalRecord
from streams import DLQ, BusMetrics, BusSettings, Keyring, TopicSpec, apply_topics, reason_label
from tests.cloud_workers.hospital.sealing import Chain, identity

pytestmark = pytest.mark.broker


async def _publish(settings: BusSettings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=b"k1")
    finally:
        await producer.stop()


async def _until(cond: Callable[[], bool], within: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _dead_letters(settings: BusSettings, source_topic: str, n: int) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(
        DLQ.name, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(out) < n and asyncio.get_running_loop().time() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    letter = DeadLetter.FromString(r.value or b"")
                    if letter.source_topic == source_topic:
                        assert r.key == source_topic.encode()
                        out.append(letter)
    finally:
        await consumer.stop()
    return sorted(out, key=lambda d: d.source_offset)


def _app(  # type: ignore[no-untyped-def]
    settings: BusSettings,
    keyring: Keyring,
    topic: str,
    group: str,
    sink: Callable[[Accepted], None],
    state: Path | None = None,
):
    async def async_sink(event: Accepted) -> None:
        sink(event)

    broker = kafka_broker(settings, f"test-{group}")
    app = VerifiedSubscriber(
        VerifiedSubscriberConfig(
            topic=topic, group_id=group, worker="subscriber-test", hospital_id="H1", state_path=state
        ),
        broker,
        settings,
        keyring,
        BusMetrics("subscriber-test"),
        async_sink,
    )
    return broker, app


async def test_every_record_has_exactly_one_outcome_and_restarts_resume(
    keyring: Keyring, settings: BusSettings
) -> None:
    topic = f"test.hospital.{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    await apply_topics(settings, [TopicSpec(name=topic, key="kiosk id", content="t", partitions=1)])
    k1 = Chain(keyring, "k1", "H1", topic)
    k2 = Chain(keyring, "k2", "H2", topic)
    good = [k1.seal(identity("k1", "H1", i)) for i in range(1, 4)]
    tampered = MedicalRecord()
    tampered.CopyFrom(good[2])
    tampered.encrypted_data = tampered.encrypted_data[:-1] + bytes([tampered.encrypted_data[-1] ^ 1])
    boom = k1.seal(identity("k1", "H1", 666))  # the sink raises on it
    last = k1.seal(identity("k1", "H1", 5))
    values = [
        good[0].SerializeToString(),  # 0 handled
        good[1].SerializeToString(),  # 1 handled
        good[1].SerializeToString(),  # 2 duplicate
        b"\x00\xffnot an envelope",  # 3 malformed
        tampered.SerializeToString(),  # 4 bad_signature
        good[2].SerializeToString(),  # 5 handled (the forgery did not advance the chain)
        k2.seal(identity("k2", "H2", 1)).SerializeToString(),  # 6 wrong_hospital
        boom.SerializeToString(),  # 7 internal_error (sink failed)
        last.SerializeToString(),  # 8 handled
    ]
    seen: list[tuple[int, int]] = []

    def sink(event: Accepted) -> None:
        assert isinstance(event.message, IdentityCheck)
        if event.message.skew_ns == 666:
            raise RuntimeError("downstream system refused it")
        seen.append((event.record.offset, event.envelope.seq))

    broker, app = _app(settings, keyring, topic, group, sink)
    async with TestKafkaBroker(broker, with_real=True):
        await _publish(settings, topic, values)
        await _until(lambda: sum(app.outcomes.values()) == len(values))
        assert app.subscriber.mock is not None
        assert app.subscriber.mock.call_count == len(values)
        await app.drain()
    assert seen == [(0, 1), (1, 2), (5, 3), (8, 5)]
    assert app.outcomes == {"handled": 4, "duplicate": 1, "dead_lettered": 4}
    letters = await _dead_letters(settings, topic, 4)
    assert [(d.source_offset, reason_label(d.reason)) for d in letters] == [
        (3, "malformed"),
        (4, "bad_signature"),
        (6, "wrong_hospital"),
        (7, "internal_error"),
    ]
    assert letters[0].value == values[3]  # kept whole
    # The sink's message could quote decrypted data: the unencrypted dead letter keeps its type only.
    assert letters[3].detail == "RuntimeError (message withheld: raised on decrypted data)"
    assert all(d.worker == "subscriber-test" for d in letters)

    # Same group again: every offset above was committed after its outcome, so only the new record arrives.
    following = k1.seal(identity("k1", "H1", 6))
    seen.clear()
    broker2, app2 = _app(settings, keyring, topic, group, sink)
    async with TestKafkaBroker(broker2, with_real=True):
        await _until(app2.assigned.is_set)
        await _publish(settings, topic, [following.SerializeToString()])
        await _until(lambda: sum(app2.outcomes.values()) >= 1)
        await asyncio.sleep(0.5)
        await app2.drain()
    assert seen == [(9, 6)]
    assert app2.outcomes == {"handled": 1}


async def test_chain_state_survives_a_restart(keyring: Keyring, settings: BusSettings, tmp_path: Path) -> None:
    """An old envelope replayed while the subscriber was down is a duplicate after the restart, not a new
    baseline (which would deliver it twice and lock the kiosk's genuine next envelope out as a gap)."""
    topic = f"test.hospital.{uuid.uuid4().hex[:8]}"
    group = f"g-{uuid.uuid4().hex[:8]}"
    await apply_topics(settings, [TopicSpec(name=topic, key="kiosk id", content="t", partitions=1)])
    k1 = Chain(keyring, "k1", "H1", topic)
    r1, r2, r3 = (k1.seal(identity("k1", "H1", i)) for i in (1, 2, 3))
    state = tmp_path / "chains.db"
    seen: list[tuple[int, int]] = []

    def sink(event: Accepted) -> None:
        seen.append((event.record.offset, event.envelope.seq))

    broker, app = _app(settings, keyring, topic, group, sink, state)
    async with TestKafkaBroker(broker, with_real=True):
        await _publish(settings, topic, [r1.SerializeToString(), r2.SerializeToString()])
        await _until(lambda: sum(app.outcomes.values()) == 2)
        await app.drain()
    app.close()
    await _publish(settings, topic, [r1.SerializeToString(), r3.SerializeToString()])  # a replay, then seq 3
    broker2, app2 = _app(settings, keyring, topic, group, sink, state)
    async with TestKafkaBroker(broker2, with_real=True):
        await _until(lambda: sum(app2.outcomes.values()) == 2)
        await app2.drain()
    app2.close()
    assert seen == [(0, 1), (1, 2), (3, 3)]
    assert app2.outcomes == {"duplicate": 1, "handled": 1}
