"""The Kafka-native registry against hostile writers: impersonation, forgery, garbage, replays, future-dated
heartbeats; and restarts (a restarted instance is accepted again, a late reader applies the TTL to history)."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer

from schemas import ServiceInstance
from streams import BusSettings, ChainState, Keyring, seal
from streams.discovery import Check, KafkaRegistry
from tests.streams.discovery.helpers import kafka_topic

pytestmark = [pytest.mark.broker]


async def _raw(settings: BusSettings, topic: str, value: bytes, key: bytes = b"kiosk/k2") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def _heartbeat(instance_id: str, *, at_ns: int | None = None, ttl_ms: int = 2000) -> ServiceInstance:
    return ServiceInstance(
        service="kiosk",
        instance_id=instance_id,
        address="127.0.0.1",
        port=1,
        at=time.time_ns() if at_ns is None else at_ns,
        ttl_ms=ttl_ms,
        alive=True,
        check_passing=True,
    )


async def test_hostile_heartbeats_are_refused(settings: BusSettings, keyring: Keyring) -> None:
    topic = await kafka_topic(settings)
    # k1 signs a heartbeat that claims to be k2.
    rec, _ = seal(
        _heartbeat("k2"),
        signing_key=keyring.signing_key("k1"),
        chain=ChainState(),
        hospital_id="H1",
        data_key=None,
        stream=topic,
    )
    await _raw(settings, topic, rec.SerializeToString())
    # A heartbeat of k2 whose signature was tampered with after signing.
    good, _ = seal(
        _heartbeat("k2"),
        signing_key=keyring.signing_key("k2"),
        chain=ChainState(),
        hospital_id="H2",
        data_key=None,
        stream=topic,
    )
    forged = type(good)()
    forged.CopyFrom(good)
    forged.signature.s = bytes(32)
    await _raw(settings, topic, forged.SerializeToString())
    await _raw(settings, topic, b"\x00garbage\xff" * 10)
    reader = KafkaRegistry(settings, keyring, topic=topic)
    try:
        assert await reader.instances() == []
        assert reader.rejected == 3  # impersonation, bad signature, garbage: each to dlq.v1
        # The real k2 registers through its own key: accepted.
        writer = KafkaRegistry(settings, keyring, producer_id="k2", topic=topic)
        try:
            with pytest.raises(ValueError, match="only register itself"):
                await writer.register(service="kiosk", instance_id="k1", address="x", port=1)
            await writer.register(service="kiosk", instance_id="k2", address="127.0.0.1", port=2)
        finally:
            await writer.stop()
        for _ in range(50):
            if await reader.healthy("kiosk"):
                break
            await asyncio.sleep(0.1)
        assert [i.instance_id for i in await reader.healthy("kiosk")] == ["k2"]
    finally:
        await reader.stop()


async def test_future_dated_heartbeat_buys_no_extra_life(settings: BusSettings, keyring: Keyring) -> None:
    topic = await kafka_topic(settings)
    writer = KafkaRegistry(settings, keyring, producer_id="k1", topic=topic)
    reader = KafkaRegistry(settings, keyring, topic=topic)
    try:
        await writer._publish(_heartbeat("k1", at_ns=time.time_ns() + 3600 * 10**9, ttl_ms=1000))
        for _ in range(50):
            if await reader.instances("kiosk"):
                break
            await asyncio.sleep(0.1)
        assert (await reader.instances("kiosk"))[0].healthy
        await asyncio.sleep(1.5)
        assert not (await reader.instances("kiosk"))[0].healthy, "a clock an hour fast must not keep it alive"
    finally:
        await writer.stop()
        await reader.stop()


async def test_restarted_instance_and_late_reader(settings: BusSettings, keyring: Keyring) -> None:
    topic = await kafka_topic(settings)
    check = Check(ttl_s=2.0)
    for _ in range(2):  # the same kiosk, started twice: its second run's heartbeats must not look replayed
        writer = KafkaRegistry(settings, keyring, producer_id="k1", topic=topic)
        await writer.register(service="kiosk", instance_id="k1", address="127.0.0.1", port=1, check=check)
        await writer.stop()
    reader = KafkaRegistry(settings, keyring, topic=topic)
    try:
        found = await reader.instances("kiosk")
        assert [i.healthy for i in found] == [True]
        assert reader.rejected == 0
    finally:
        await reader.stop()
    await asyncio.sleep(2.2)
    late = KafkaRegistry(settings, keyring, topic=topic)
    try:
        # History is read from the start of the topic, but the TTL runs from when the heartbeat was sent.
        assert [i.healthy for i in await late.instances("kiosk")] == [False]
    finally:
        await late.stop()
