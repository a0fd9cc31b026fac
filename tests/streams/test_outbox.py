"""The outbox: durable before acknowledged, chain continuous across restarts, deleted only after the broker acks."""

from __future__ import annotations

import asyncio
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from schemas import Telemetry
from streams import (
    BusMetrics,
    BusSettings,
    ChainTracker,
    ChainVerdict,
    Keyring,
    Outbox,
    OutboxSender,
    SealRequest,
    TopicSpec,
    apply_topics,
    envelope_hash,
    open_envelope,
)


def _req(topic: str, i: int) -> SealRequest:
    return SealRequest(
        topic=topic, key=b"k1", message=Telemetry(kiosk_id="k1", queue_depth=i), hospital_id="H1", data_key=None
    )


def test_chain_survives_reopen(keyring: Keyring, tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    box = Outbox(path, signing_key=keyring.signing_key("k1"))
    assert box.put([_req("t", 0), _req("t", 1)]) == [1, 2]
    box.close()
    box = Outbox(path, signing_key=keyring.signing_key("k1"))  # as after a crash or reboot
    assert box.put([_req("t", 2)]) == [3]
    rows = box.pending()
    assert len(rows) == 3
    tracker = ChainTracker()
    for row in rows:
        env = open_envelope(row.value, keyring).envelope
        digest = envelope_hash(env)
        assert tracker.check(env, digest) is ChainVerdict.ACCEPT
        tracker.accept(env, digest)
    box.ack([rows[0].id])
    assert [r.id for r in box.pending()] == [rows[1].id, rows[2].id]
    assert box.depth()[0] == 2
    box.close()


def test_raw_messages_need_no_key(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put(raw=[("t", b"k", b"v")])
    assert [(r.topic, r.key, r.value) for r in box.pending()] == [("t", b"k", b"v")]
    box.close()


async def test_sender_delivers_in_order_and_empties_the_outbox(
    keyring: Keyring, settings: BusSettings, tmp_path: Path
) -> None:
    topic = "test.outbox.sender"
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="test", partitions=1)])
    box = Outbox(tmp_path / "o.db", signing_key=keyring.signing_key("k1"))
    sender = OutboxSender(box, settings, BusMetrics("test"))
    await asyncio.to_thread(box.put, [_req(topic, i) for i in range(300)])
    await sender.start()
    assert await sender.drain(30)
    await sender.stop()
    assert box.depth()[0] == 0
    box.close()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seqs: list[int] = []
        while len(seqs) < 300:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                seqs.extend(open_envelope(r.value, keyring).envelope.seq for r in records)
    finally:
        await consumer.stop()
    assert seqs == list(range(1, 301))


async def test_outbox_age_is_read_at_scrape_time_even_while_the_sender_is_stuck(
    keyring: Keyring, settings: BusSettings, tmp_path: Path
) -> None:
    """The age gauge used to move only when the sender next flushed (up to a 15 s send timeout later), so the
    stale-outbox alert fired late. It is read from the outbox at every scrape; a closed outbox never breaks one."""
    box = Outbox(tmp_path / "o.db", signing_key=keyring.signing_key("k1"))
    metrics = BusMetrics("test-age")
    OutboxSender(box, settings.model_copy(update={"bootstrap_servers": "127.0.0.1:9"}), metrics)  # never started
    assert metrics.value("medkiosk_outbox_depth") == 0
    box.put([_req("t", 0), _req("t", 1)])
    first = metrics.value("medkiosk_outbox_oldest_age_seconds")
    await asyncio.sleep(0.3)
    later = metrics.value("medkiosk_outbox_oldest_age_seconds")
    assert metrics.value("medkiosk_outbox_depth") == 2
    assert later >= first + 0.25
    box.close()
    assert metrics.value("medkiosk_outbox_depth") == 2  # the last values, no exception
