"""The consumer on a real broker: good envelopes reach the handler once, bad ones land in the DLQ
with their reason and a metric, and the worker keeps going."""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import DeadLetter, IdentityCheck, MedicalRecord, RejectReason
from streams import (
    DLQ,
    BusMetrics,
    BusSettings,
    ChainState,
    ConsumerConfig,
    EnvelopeConsumer,
    Keyring,
    TopicSpec,
    VerifiedEvent,
    apply_topics,
    run_consumer,
    seal,
)


async def _dead_letters(settings: BusSettings, source_topic: str, want: int) -> list[DeadLetter]:
    consumer = AIOKafkaConsumer(DLQ.name, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    found: list[DeadLetter] = []
    try:
        for _ in range(100):
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    letter = DeadLetter.FromString(r.value)
                    if letter.source_topic == source_topic:
                        found.append(letter)
            if len(found) >= want:
                break
    finally:
        await consumer.stop()
    return found


async def test_bad_input_goes_to_the_dlq_and_the_worker_survives(keyring: Keyring, settings: BusSettings) -> None:
    topic = f"test.consumer.{uuid.uuid4().hex[:8]}"
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="t", partitions=1), DLQ])
    state = ChainState()
    recs: list[MedicalRecord] = []
    for i in range(7):
        msg = IdentityCheck(kiosk_id="k1", hospital_id="H1", skew_ns=i)
        rec, state = seal(
            msg,
            signing_key=keyring.signing_key("k1"),
            chain=state,
            hospital_id="H1",
            data_key=keyring.latest_data_key("H1"),
            stream=topic,
        )
        recs.append(rec)
    tampered = MedicalRecord()
    tampered.CopyFrom(recs[3])
    tampered.timestamp += 1
    wire = [
        recs[0],
        recs[1],
        b"\x00garbage",
        recs[2],
        recs[2],
        tampered,
        recs[3],
        recs[4],  # recs[4] makes the handler fail
        recs[6],  # seq 7 after 5: a gap (6 never sent)
    ]
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for item in wire:
            value = item if isinstance(item, bytes) else item.SerializeToString()
            await producer.send_and_wait(topic, value, key=b"k1")
    finally:
        await producer.stop()

    seen: list[int] = []

    async def handler(event: VerifiedEvent) -> None:
        assert isinstance(event.message, IdentityCheck)
        if event.envelope.seq == 5:
            raise ValueError("handler bug")
        seen.append(event.envelope.seq)

    metrics = BusMetrics("test-consumer")
    consumer = EnvelopeConsumer(
        ConsumerConfig(topics=[topic], group_id=f"g-{topic}", worker="test-consumer"),
        settings,
        keyring,
        metrics,
        handler,
    )
    await consumer.start()
    stop = asyncio.Event()
    runner = asyncio.create_task(run_consumer(consumer, stop))
    for _ in range(300):
        if consumer.accepted + consumer.rejected + consumer.duplicates >= len(wire):
            break
        await asyncio.sleep(0.05)
    stop.set()
    await runner
    await consumer.stop()

    assert seen == [1, 2, 3, 4]
    assert consumer.duplicates == 1
    letters = await _dead_letters(settings, topic, 4)
    reasons = sorted(RejectReason.Name(letter.reason) for letter in letters)
    assert reasons == sorted(
        [
            "REJECT_REASON_MALFORMED",
            "REJECT_REASON_BAD_SIGNATURE",
            "REJECT_REASON_INTERNAL_ERROR",
            "REJECT_REASON_SEQ_GAP",
        ]
    )
    gap = next(x for x in letters if x.reason == RejectReason.REJECT_REASON_SEQ_GAP)
    assert gap.producer_id == "k1" and gap.seq == 7 and gap.value == recs[6].SerializeToString()
    assert metrics.value("medkiosk_rejects_total", topic=topic, reason="bad_signature") == 1
    assert metrics.value("medkiosk_rejects_total", topic=topic, reason="malformed") == 1
    assert metrics.value("medkiosk_duplicates_total", topic=topic) == 1
    assert metrics.value("medkiosk_events_in_total", topic=topic) == 4
