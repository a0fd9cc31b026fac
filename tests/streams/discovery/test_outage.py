"""The Kafka-native registry through a broker outage (its own Tansu broker, stopped for longer than the TTL):
the reader cannot tell silence from blindness, so it stops the TTL clock instead of declaring the fleet
dead; a heartbeat that cannot reach the broker fails softly and the instance keeps running."""

from __future__ import annotations

import asyncio
from pathlib import Path

from schemas import ServiceInstance
from streams import DLQ, BusSettings, Keyring, TopicSpec, apply_topics
from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig, free_port
from streams.discovery import Check, Heartbeat, KafkaRegistry
from streams.discovery._kafka import instance_from


def test_blind_time_does_not_count_against_the_ttl() -> None:
    msg = ServiceInstance(
        service="kiosk", instance_id="k1", address="a", port=1, ttl_ms=2000, alive=True, check_passing=True
    )
    assert instance_from(msg, at_s=100.0, now_s=101.9).healthy
    assert not instance_from(msg, at_s=100.0, now_s=102.1).healthy
    assert instance_from(msg, at_s=100.0, now_s=110.0, blind_s=8.5).healthy
    assert not instance_from(msg, at_s=100.0, now_s=110.0, blind_s=7.5).healthy


async def test_outage_freezes_health_instead_of_killing_the_fleet(tmp_path: Path, keys_dir: Path) -> None:
    keyring = Keyring.load(keys_dir)
    broker = EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path / "broker"))
    broker.start()
    settings = BusSettings(
        bootstrap_servers=broker.bootstrap, keys_dir=keys_dir, state_dir=tmp_path / "state", request_timeout_ms=2000
    )
    reader = KafkaRegistry(settings, keyring, topic="registry.v1")
    try:
        await apply_topics(settings, [TopicSpec(name="registry.v1", key="s/i", content="t", cleanup="compact"), DLQ])
        writer = KafkaRegistry(settings, keyring, producer_id="k1", topic="registry.v1")
        await writer.register(service="kiosk", instance_id="k1", address="127.0.0.1", port=1, check=Check(ttl_s=2))
        await writer.stop()
        assert [i.healthy for i in await reader.instances("kiosk")] == [True]
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(4.5)  # twice the TTL without a single heartbeat
        assert not reader.reachable
        assert [i.healthy for i in await reader.instances("kiosk")] == [True], "an outage is not a dead fleet"
    finally:
        await reader.stop()
        broker.stop()


async def test_unreachable_registry_never_stops_the_instance(keys_dir: Path, tmp_path: Path) -> None:
    keyring = Keyring.load(keys_dir)
    dead = BusSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}", keys_dir=keys_dir, state_dir=tmp_path, request_timeout_ms=1000
    )
    registry = KafkaRegistry(dead, keyring, producer_id="k1")
    beat = Heartbeat(
        registry, service="kiosk", instance_id="k1", address="127.0.0.1", port=1, check=Check(ttl_s=3), interval_s=0.2
    )
    try:
        assert await beat.beat() is False
        async with beat:
            await asyncio.sleep(0.5)
        assert beat.beats == 0 and beat.failures >= 2
    finally:
        await registry.stop()


async def test_cold_reader_lists_everyone_on_the_s3_store(tmp_path: Path, keys_dir: Path) -> None:
    """Regression: the S3-backed embedded broker under-reports end offsets (BROKER.md), so a reader that
    stopped at the reported end missed instances; it reads on until the topic is quiet."""
    keyring = Keyring.load(keys_dir)
    with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path / "broker", storage="s3")) as broker:
        settings = BusSettings(bootstrap_servers=broker.bootstrap, keys_dir=keys_dir, state_dir=tmp_path / "s")
        await apply_topics(settings, [TopicSpec(name="registry.v1", key="s/i", content="t", cleanup="compact"), DLQ])
        ids = ["k1", "k2", "k3", "gateway-1", "gateway-2"]
        for _ in range(3):
            for pid in ids:
                writer = KafkaRegistry(settings, keyring, producer_id=pid, topic="registry.v1")
                await writer.register(service="svc", instance_id=pid, address="h", port=1, check=Check(ttl_s=60))
                await writer.stop()
        reader = KafkaRegistry(settings, keyring, topic="registry.v1")
        try:
            assert sorted(i.instance_id for i in await reader.healthy("svc")) == sorted(ids)
        finally:
            await reader.stop()
