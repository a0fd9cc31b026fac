"""The Prometheus HTTP SD endpoint: target groups from healthy instances with a metrics endpoint, served over
real HTTP from a real registry (etcd), and the registry process's own /metrics with a real broker probe."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.request

from streams import BusSettings, Keyring
from streams.broker import EmbeddedBroker, free_port
from streams.discovery import (
    Check,
    EtcdRegistry,
    EtcdServer,
    Instance,
    RegistrySettings,
    SdServer,
    follow_groups,
    group_members,
    groups_from_registry,
    sd_targets,
)


def _inst(iid: str, *, healthy: bool = True, meta: dict[str, str] | None = None) -> Instance:
    return Instance(service="kiosk", instance_id=iid, address="10.0.0.1", port=1, meta=meta or {}, healthy=healthy)


def test_targets_only_healthy_with_metrics() -> None:
    groups = sd_targets(
        [
            _inst("a", meta={"metrics": "10.0.0.1:9108", "role": "kiosk", "hospital": "H1", "groups": "x"}),
            _inst("b", healthy=False, meta={"metrics": "10.0.0.2:9108"}),
            _inst("c", meta={}),
        ]
    )
    assert groups == [
        {
            "targets": ["10.0.0.1:9108"],
            "labels": {
                "job": "medkiosk-kiosk",
                "service": "kiosk",
                "medkiosk_instance": "a",
                "role": "kiosk",
                "hospital": "H1",
            },
        }
    ]


def test_group_members_from_healthy_kiosks() -> None:
    fleet = [
        _inst("k2", meta={"groups": "lobby, H1"}),
        _inst("k1", meta={"groups": "lobby"}),
        _inst("k3", healthy=False, meta={"groups": "lobby"}),
        _inst("k4", meta={"groups": ""}),
    ]
    assert group_members(fleet) == {"H1": ["k2"], "lobby": ["k1", "k2"]}


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        body: bytes = resp.read()
        return body


async def test_sd_server_follows_the_registry(etcd: EtcdServer, broker: EmbeddedBroker) -> None:
    prefix = "/test/sd/"
    writer = EtcdRegistry(etcd.url, prefix=prefix)
    reader = EtcdRegistry(etcd.url, prefix=prefix)
    await reader.start()
    dead_port = free_port()
    server = SdServer(reader, brokers=[broker.bootstrap, f"127.0.0.1:{dead_port}"])
    await server.start()
    try:
        own = json.loads(await asyncio.to_thread(_get, server.url))
        assert own == [{"targets": [server.address], "labels": {"job": "medkiosk-registry", "service": "registry"}}]
        await writer.register(
            service="cloud-gateway",
            instance_id="gateway-1",
            address="127.0.0.1",
            port=9100,
            meta={"role": "gateway", "metrics": "127.0.0.1:9100"},
            check=Check(ttl_s=2),
        )
        for _ in range(50):
            groups = json.loads(await asyncio.to_thread(_get, server.url))
            if len(groups) == 2:
                break
            await asyncio.sleep(0.1)
        assert groups[0]["targets"] == ["127.0.0.1:9100"] and groups[0]["labels"]["job"] == "medkiosk-gateway"
        listed = json.loads(await asyncio.to_thread(_get, f"http://{server.address}/instances"))
        assert [i["instance_id"] for i in listed] == ["gateway-1"]
        metrics = (await asyncio.to_thread(_get, f"http://{server.address}/metrics")).decode()
        assert 'medkiosk_registry_instances{health="healthy",service="cloud-gateway"} 1.0' in metrics
        assert f'medkiosk_broker_up{{broker="{broker.bootstrap}"}} 1.0' in metrics
        assert f'medkiosk_broker_up{{broker="127.0.0.1:{dead_port}"}} 0.0' in metrics
    finally:
        await server.stop()
        await reader.stop()
        await writer.stop()


async def test_follow_groups_tracks_the_fleet(etcd: EtcdServer) -> None:
    """An autoscaler's group:<name> targets from the registry: join, leave, die."""
    registry = EtcdRegistry(etcd.url, prefix="/test/groups/")
    await registry.start()
    groups: dict[str, list[str]] = {}
    task = asyncio.create_task(follow_groups(registry, groups, static={"night": ["k9"]}))
    try:
        for iid, member_of in (("k1", "lobby,er"), ("k2", "lobby")):
            await registry.register(
                service="kiosk",
                instance_id=iid,
                address="127.0.0.1",
                port=1,
                meta={"groups": member_of},
                check=Check(ttl_s=2),
            )
        for _ in range(50):
            if groups.get("lobby") == ["k1", "k2"]:
                break
            await asyncio.sleep(0.1)
        assert groups == {"night": ["k9"], "lobby": ["k1", "k2"], "er": ["k1"]}
        await registry.deregister("kiosk", "k1")
        for _ in range(50):
            if groups.get("lobby") == ["k2"]:
                break
            await asyncio.sleep(0.1)
        assert groups == {"night": ["k9"], "lobby": ["k2"]}
        for _ in range(60):  # k2 stops heartbeating: its lease runs out
            if "lobby" not in groups:
                break
            await asyncio.sleep(0.1)
        assert groups == {"night": ["k9"]}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await registry.stop()


async def test_groups_from_registry_is_opt_in(etcd: EtcdServer) -> None:
    empty = Keyring(producers={}, public_keys={}, signing_keys={}, data_keys={})
    groups = {"night": ["k9"]}
    off = RegistrySettings(backend="etcd", etcd_url=etcd.url, etcd_prefix="/test/optin/")
    writer = EtcdRegistry(etcd.url, prefix="/test/optin/")
    await writer.register(service="kiosk", instance_id="k1", address="h", port=1, meta={"groups": "lobby"})
    try:
        async with groups_from_registry(groups, bus=BusSettings(), keyring=empty, settings=off):
            await asyncio.sleep(0.5)
        assert groups == {"night": ["k9"]}, "configured groups only, unless asked to follow the registry"
        on = off.model_copy(update={"follow_groups": True})
        async with groups_from_registry(groups, bus=BusSettings(), keyring=empty, settings=on):
            for _ in range(50):
                if "lobby" in groups:
                    break
                await asyncio.sleep(0.1)
        assert groups == {"night": ["k9"], "lobby": ["k1"]}
    finally:
        await writer.deregister("kiosk", "k1")
        await writer.stop()
