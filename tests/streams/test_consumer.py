"""The consumer on a real broker: good envelopes reach the handler once, bad ones land in the DLQ
with their reason and a metric, and the worker keeps going."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

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


async def test_a_partition_another_member_moved_past_restarts_there_without_stale_links(
    keyring: Keyring, settings: BusSettings, tmp_path: Path
) -> None:
    """Member A stores its chain and offset (seq 3), member B of the same group goes on to seq 6 and commits. When
    A gets the partition back, its stored link for the kiosk is stale: A must drop it and start at the group's
    offset, so seq 7 is a fresh baseline and not a ``seq_gap``, and 4-6 are not processed twice."""
    topic = f"test.consumer.moved.{uuid.uuid4().hex[:8]}"
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="t", partitions=1), DLQ])
    state, recs = ChainState(), []
    for i in range(8):
        rec, state = seal(
            IdentityCheck(kiosk_id="k1", hospital_id="H1", skew_ns=i), signing_key=keyring.signing_key("k1"),
            chain=state, hospital_id="H1", data_key=keyring.latest_data_key("H1"), stream=topic,
        )  # fmt: skip
        recs.append(rec)

    async def produce(items: list[MedicalRecord]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            for item in items:
                await producer.send_and_wait(topic, item.SerializeToString(), key=b"k1")
        finally:
            await producer.stop()

    async def member(state_dir: Path, want: int) -> tuple[list[int], EnvelopeConsumer]:
        seen: list[int] = []

        async def handler(event: VerifiedEvent) -> None:
            seen.append(event.envelope.seq)

        consumer = EnvelopeConsumer(
            ConsumerConfig(topics=[topic], group_id=f"g-{topic}", worker="test-moved"),
            settings.model_copy(update={"state_dir": state_dir}),
            keyring,
            BusMetrics("test-moved"),
            handler,
        )
        await consumer.start()
        stop = asyncio.Event()
        runner = asyncio.create_task(run_consumer(consumer, stop))
        for _ in range(300):
            if consumer.accepted + consumer.rejected + consumer.duplicates >= want:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # anything more would arrive now
        stop.set()
        await runner
        await consumer.stop()
        return seen, consumer

    await produce(recs[:3])
    seen_a, _ = await member(tmp_path / "a", 3)
    await produce(recs[3:6])
    seen_b, _ = await member(tmp_path / "b", 3)
    await produce(recs[6:])
    seen_a2, again = await member(tmp_path / "a", 2)
    assert (seen_a, seen_b, seen_a2) == ([1, 2, 3], [4, 5, 6], [7, 8])
    assert again.rejected == 0 and again.duplicates == 0
