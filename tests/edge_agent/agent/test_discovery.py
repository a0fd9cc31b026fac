"""A kiosk in the registry (Kafka-native, real broker): it shows up with its hospital, groups, endpoints and
model versions, a hot-swapped model version reaches the registry, its TCP check follows the triage endpoint,
and it is gone once it stops."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from edge_agent.agent import CommandsConfig, KioskConfig, TriageSettings
from edge_agent.agent._discovery import kiosk_announcement
from streams import BusMetrics, BusSettings, Keyring
from streams.discovery import Instance, KafkaRegistry
from tests.streams.discovery.helpers import kafka_topic

pytestmark = [pytest.mark.broker]


async def _until(probe: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 15) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not await probe():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_kiosk_registers_heartbeats_and_leaves(
    settings: BusSettings, keyring: Keyring, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = await kafka_topic(settings)
    monkeypatch.setenv("MEDKIOSK_REGISTRY_TOPIC", topic)
    monkeypatch.setenv("MEDKIOSK_REGISTRY_TTL_S", "1.5")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = KioskConfig(
        kiosk_id="k1",
        hospital_id="H1",
        triage=TriageSettings(listen=f"127.0.0.1:{port}"),
        commands=CommandsConfig(groups=["lobby", "H1"]),
    )
    bus = settings.model_copy(update={"metrics_port": 9999})
    models = {"triage": 1}
    reader = KafkaRegistry(settings, keyring, topic=topic)
    found: list[Instance] = []

    async def listed(healthy: bool | None = True, **meta: str) -> bool:
        found[:] = await reader.instances("kiosk")
        return (
            bool(found)
            and (healthy is None or found[0].healthy == healthy)
            and all(found[0].meta.get(k) == v for k, v in meta.items())
        )

    try:
        async with kiosk_announcement(config, bus, keyring, BusMetrics("k1"), models) as beat:
            assert beat is not None
            await _until(lambda: listed(models="triage=1"), "the kiosk in the registry")
            k1 = found[0]
            assert (k1.instance_id, k1.endpoint) == ("k1", f"127.0.0.1:{port}")
            assert dict(k1.meta) == {
                "role": "kiosk",
                "hospital": "H1",
                "groups": "lobby,H1",
                "models": "triage=1",
                "triage": f"127.0.0.1:{port}",
                "metrics": "127.0.0.1:9999",
            }
            models["triage"] = 2  # a hot swap
            await _until(lambda: listed(models="triage=2"), "the new model version in the registry")
            listener.close()
            await _until(lambda: listed(healthy=False), "unhealthy once the triage endpoint refuses")
            listener = socket.create_server(("127.0.0.1", port))
            await _until(lambda: listed(healthy=True), "healthy again")

        async def gone() -> bool:
            return not await reader.instances("kiosk")

        await _until(gone, "the kiosk to leave the registry when it stops")
    finally:
        listener.close()
        await reader.stop()


async def test_no_signing_key_no_registration(settings: BusSettings, keys_dir: object) -> None:
    """A role without a signing key (a subscriber holding only data keys) runs on, unregistered."""
    empty = Keyring(producers={}, public_keys={}, signing_keys={}, data_keys={})
    config = KioskConfig(kiosk_id="nobody", hospital_id="H1", triage=TriageSettings(listen=None))
    async with kiosk_announcement(config, settings, empty, BusMetrics("nobody")) as beat:
        assert beat is None
