"""The same app on FastStream's in-memory test broker (no Kafka): the decoder and the outcomes are the app's
own, so this suite pins them without a broker; test_subscriber.py runs them against the real one."""

from __future__ import annotations

from typing import Any

from faststream.kafka import TestKafkaBroker

from cloud_workers.hospital import Accepted, VerifiedSubscriber, VerifiedSubscriberConfig, kafka_broker
from schemas import DeadLetter, MedicalRecord
from streams import BusMetrics, BusSettings, Keyring, reason_label
from tests.cloud_workers.hospital.sealing import Chain, identity

TOPIC = "test.hospital.memory"


async def test_outcomes_in_memory(keyring: Keyring, keys_dir: Any) -> None:
    settings = BusSettings(bootstrap_servers="127.0.0.1:1", keys_dir=keys_dir)  # never contacted
    seen: list[int] = []

    async def sink(event: Accepted) -> None:
        seen.append(event.envelope.seq)

    broker = kafka_broker(settings, "memory")
    app = VerifiedSubscriber(
        VerifiedSubscriberConfig(topic=TOPIC, group_id="g", worker="subscriber-memory", hospital_id="H1"),
        broker,
        settings,
        keyring,
        BusMetrics("subscriber-memory"),
        sink,
    )
    k1 = Chain(keyring, "k1", "H1", TOPIC)
    a, b = k1.seal(identity("k1", "H1", 1)), k1.seal(identity("k1", "H1", 2))
    forged = MedicalRecord()
    forged.CopyFrom(b)
    forged.seq = 3
    async with TestKafkaBroker(broker) as br:
        for value in (a, a, forged, b):
            await br.publish(value.SerializeToString(), TOPIC, key=b"k1")
        await br.publish(b"\xff", TOPIC, key=b"k1")
        await app.drain()
        assert app.dlq.mock is not None
        letters = [DeadLetter.FromString(call.args[0]) for call in app.dlq.mock.call_args_list]
    assert seen == [1, 2]
    assert app.outcomes == {"handled": 2, "duplicate": 1, "dead_lettered": 2}
    assert [reason_label(d.reason) for d in letters] == ["bad_signature", "malformed"]
