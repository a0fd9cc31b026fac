"""Audit replay over a time window: the broker's time index finds the range, record timestamps confirm it."""

from __future__ import annotations

import time
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from cloud_workers.audit import replay_topic
from cloud_workers.audit._times import parse_time_ms
from schemas import IdentityCheck
from streams import BusSettings, ChainState, Keyring, TopicSpec, apply_topics, seal
from streams.broker import LocalBroker

BASE_MS = 1_790_000_000_000
#: Record times for the broker test: an hour ago, whole seconds (recent enough that retention keeps them).
STAMP_MS = (int(time.time()) - 3600) * 1000


def test_parse_time_ms() -> None:
    assert parse_time_ms("1790000000000") == BASE_MS
    assert parse_time_ms("2026-09-21T14:13:20Z") == BASE_MS
    assert parse_time_ms("2026-09-21T14:13:20") == BASE_MS
    assert parse_time_ms("2026-09-21T16:13:20+02:00") == BASE_MS
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time_ms("yesterday")


async def _publish_stamped(settings: BusSettings, keyring: Keyring, topic: str, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    state = ChainState()
    try:
        for i in range(n):
            rec, state = seal(
                IdentityCheck(kiosk_id="k1", hospital_id="H1", skew_ns=i),
                signing_key=keyring.signing_key("k1"),
                chain=state,
                hospital_id="H1",
                data_key=keyring.latest_data_key("H1"),
            )
            await producer.send_and_wait(topic, rec.SerializeToString(), key=b"k1", timestamp_ms=STAMP_MS + i * 1000)
    finally:
        await producer.stop()


@pytest.mark.broker
async def test_replay_between_times(broker: LocalBroker, keyring: Keyring, settings: BusSettings) -> None:
    topic = f"test.audit.times.{uuid.uuid4().hex[:8]}"
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="t", partitions=1)])
    await _publish_stamped(settings, keyring, topic, 10)

    window = await replay_topic(settings, keyring, topic, from_time_ms=STAMP_MS + 3000, to_time_ms=STAMP_MS + 8000)
    # Records 3..7; starting mid-chain is not a gap, and nothing after the window is read.
    assert (window.records, window.verified, window.bad) == (5, 5, 0)
    tail = await replay_topic(settings, keyring, topic, from_time_ms=STAMP_MS + 8500)
    assert (tail.records, tail.bad) == (1, 0)
    empty = await replay_topic(settings, keyring, topic, from_time_ms=STAMP_MS + 60_000)
    assert (empty.records, empty.bad) == (0, 0)

    if broker.engine == "kafka":
        # Apache Kafka's time index answers exactly (Tansu answers 0 for every time; the replay copes).
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            found = await consumer.offsets_for_times({tp: STAMP_MS + 3000})
            assert found[tp] is not None and found[tp].offset == 3
        finally:
            await consumer.stop()
