"""One contract, every backend: register/deregister, health by TTL (silence -> unhealthy within the TTL, back
when heartbeats return), the TCP check, and watch. Kafka-native and etcd run here; Consul when its binary exists."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest

from streams.discovery import Check, Heartbeat, Instance, RegistryBase

pytestmark = [pytest.mark.broker]

Backend = tuple[str, dict[str, RegistryBase]]
TTL = Check(ttl_s=2.0)


async def _until(probe: Callable[[], object], timeout_s: float, what: str) -> float:
    """Poll an async predicate; returns the seconds it took."""
    start = time.monotonic()
    while True:
        if await probe():  # type: ignore[misc]
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.1)


async def test_register_list_deregister(backend: Backend) -> None:
    _, regs = backend
    await regs["k1"].register(
        service="kiosk", instance_id="k1", address="127.0.0.1", port=8001, meta={"hospital": "H1"}, check=TTL
    )
    await regs["k2"].register(service="kiosk", instance_id="k2", address="127.0.0.1", port=8002, check=TTL)
    await regs["gateway-1"].register(
        service="cloud-gateway", instance_id="gateway-1", address="127.0.0.1", port=9100, check=TTL
    )
    reader = regs["gateway-1"]

    async def both() -> bool:
        return {i.instance_id for i in await reader.healthy("kiosk")} == {"k1", "k2"}

    await _until(both, 10, "both kiosks healthy")
    k1 = next(i for i in await reader.instances("kiosk") if i.instance_id == "k1")
    assert (k1.endpoint, dict(k1.meta), k1.healthy) == ("127.0.0.1:8001", {"hospital": "H1"}, True)
    assert [i.instance_id for i in await reader.healthy("cloud-gateway")] == ["gateway-1"]
    assert {i.service for i in await reader.instances()} >= {"kiosk", "cloud-gateway"}

    await regs["k2"].deregister("kiosk", "k2")

    async def only_k1() -> bool:
        return [i.instance_id for i in await reader.instances("kiosk")] == ["k1"]

    await _until(only_k1, 10, "k2 gone after deregistering")


async def test_silence_turns_unhealthy_within_ttl_and_back(backend: Backend) -> None:
    _, regs = backend
    beat = Heartbeat(
        regs["k1"], service="kiosk", instance_id="k1", address="127.0.0.1", port=8001, check=TTL, interval_s=0.4
    )
    reader = regs["gateway-1"]

    async def healthy() -> bool:
        return [i.instance_id for i in await reader.healthy("kiosk")] == ["k1"]

    async def unhealthy() -> bool:
        return not await healthy()

    async with beat:
        await _until(healthy, 10, "k1 healthy")
        beat.pause()
        silent_for = await _until(unhealthy, 10, "k1 unhealthy after it went silent")
        # Within its TTL (plus one beat it may have sent just before the pause and the reader's own poll).
        assert silent_for <= TTL.ttl_s + beat.interval_s + 1.5
        beat.pause(False)
        await _until(healthy, 10, "k1 healthy again once it heartbeats")
    assert beat.failures == 0 and beat.beats >= 2


async def test_tcp_check_decides_health(backend: Backend) -> None:
    _, regs = backend
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    check = Check(ttl_s=2.0, tcp=f"127.0.0.1:{port}")
    beat = Heartbeat(
        regs["k1"], service="kiosk-tcp", instance_id="k1", address="127.0.0.1", port=port, check=check, interval_s=0.4
    )
    reader = regs["gateway-1"]

    async def healthy() -> bool:
        return [i.instance_id for i in await reader.healthy("kiosk-tcp")] == ["k1"]

    async def failing() -> bool:
        found = await reader.instances("kiosk-tcp")
        return bool(found) and not found[0].healthy

    async with beat:
        await _until(healthy, 10, "healthy while the port accepts")
        listener.close()
        await _until(failing, 15, "unhealthy once the port refuses (still listed)")
        listener = socket.create_server(("127.0.0.1", port))
        await _until(healthy, 15, "healthy again")
    listener.close()


async def test_watch_sees_arrivals_and_expiry(backend: Backend) -> None:
    _, regs = backend
    reader = regs["gateway-1"]
    seen: list[list[Instance]] = []

    async def follow(stream: AsyncIterator[list[Instance]]) -> None:
        async for snapshot in stream:
            seen.append(snapshot)

    task = asyncio.create_task(follow(reader.watch("kiosk-w")))
    try:
        await asyncio.sleep(0.5)
        await regs["k2"].register(service="kiosk-w", instance_id="k2", address="127.0.0.1", port=1, check=TTL)

        async def arrived() -> bool:
            return any(s and s[0].healthy for s in seen)

        async def expired() -> bool:
            return bool(seen) and all(not i.healthy for i in seen[-1])

        await _until(arrived, 10, "watch to report k2")
        await _until(expired, 10, "watch to report k2 gone or unhealthy after its TTL")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert seen[0] == [], "the first snapshot is the state before k2 registered"
