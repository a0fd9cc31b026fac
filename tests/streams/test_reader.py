"""LogReader on a real broker: manual assignment from offsets, read-to-end, dedupe on (producer_id, seq),
REPLAYED_SEQ to the DLQ, and fetching single records by offset."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import DeadLetter, IdentityCheck, MedicalRecord, RejectReason
from streams import DLQ, BusMetrics, BusSettings, ChainState, Keyring, LogReader, TopicSpec, apply_topics, seal

pytestmark = [pytest.mark.broker]


def _envelopes(keyring: Keyring, n: int, topic: str) -> list[MedicalRecord]:
    state, out = ChainState(), []
    for i in range(n):
        rec, state = seal(
            IdentityCheck(kiosk_id="k1", hospital_id="H1", skew_ns=i),
            signing_key=keyring.signing_key("k1"),
            chain=state,
            hospital_id="H1",
            data_key=keyring.latest_data_key("H1"),
            stream=topic,
        )
        out.append(rec)
    return out


async def test_reader_assigns_dedupes_and_fetches(keyring: Keyring, settings: BusSettings) -> None:
    topic = f"test.reader.{uuid.uuid4().hex[:8]}"
    recs = _envelopes(keyring, 5, topic)
    replay = MedicalRecord()
    replay.CopyFrom(recs[1])
    other = _envelopes(keyring, 2, topic)[1]  # seq 2 again, different content, validly signed
    reader = LogReader(settings, keyring, BusMetrics("test-reader"), worker="test-reader")
    await reader.start()  # before the topic exists: partitions() must still find it later
    try:
        await apply_topics(settings, [TopicSpec(name=topic, key="k", content="t", partitions=1), DLQ])
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
        await producer.start()
        try:
            for rec in [*recs, replay, other]:
                await producer.send_and_wait(topic, rec.SerializeToString(), key=b"k1")
        finally:
            await producer.stop()
        (tp,) = await reader.partitions(topic)
        await reader.assign({tp: 2})
        events = await reader.read_to_end()
        assert [e.envelope.seq for e in events] == [3, 4, 5, 2]  # started at offset 2; the replayed seq 2 is new here
        assert all(isinstance(e.message, IdentityCheck) for e in events)

        await reader.assign({tp: None})
        again = await reader.read_to_end()
        assert [e.envelope.seq for e in again] == [1]  # everything else was seen: duplicates
        assert reader.duplicates == 5 and reader.rejected == 2  # `other`: seq 2 again with other content, twice
        fetched = await reader.fetch({TopicPartition(topic, 0): [0, 4, 99]})
        assert sorted(off for _, off in fetched) == [0, 4]
        assert await reader.position(tp) == 7
    finally:
        await reader.stop()

    consumer = AIOKafkaConsumer(DLQ.name, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    letters: list[DeadLetter] = []
    try:
        for _ in range(50):
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                letters += [d for d in (DeadLetter.FromString(r.value) for r in batch) if d.source_topic == topic]
            if len(letters) >= 2:
                break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    assert [(d.reason, d.source_offset) for d in letters] == [(RejectReason.REJECT_REASON_REPLAYED_SEQ, 6)] * 2
