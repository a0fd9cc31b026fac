"""Real registries for the contract tests: the Kafka-native one on the session broker (its own topic per
test), a real etcd started for the session on ephemeral loopback ports, and a Consul agent in dev mode when
a ``consul`` binary is on PATH (skipped with that reason otherwise)."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from streams import BusSettings, Keyring
from streams.broker import free_port
from streams.discovery import (
    ConsulRegistry,
    EtcdNotFound,
    EtcdRegistry,
    EtcdServer,
    EtcdServerConfig,
    KafkaRegistry,
    RegistryBase,
)
from tests.streams.discovery.helpers import kafka_topic


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    """One real etcd for the session (Debian's etcd-server)."""
    try:
        server = EtcdServer(EtcdServerConfig(data_dir=tmp_path_factory.mktemp("etcd")))
        server.start()
    except EtcdNotFound as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def consul_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    binary = shutil.which("consul")
    if binary is None:
        pytest.skip("no consul binary on PATH (no Consul server installs from Debian or PyPI here)")
    port = free_port()
    data = tmp_path_factory.mktemp("consul")
    proc = subprocess.Popen(
        [
            binary,
            "agent",
            "-dev",
            "-bind",
            "127.0.0.1",
            "-client",
            "127.0.0.1",
            f"-http-port={port}",
            "-grpc-port=-1",
            "-dns-port=-1",
            f"-serf-lan-port={free_port()}",
            f"-serf-wan-port={free_port()}",
            f"-server-port={free_port()}",
            f"-data-dir={data}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status/leader", timeout=1) as r:
                    if r.read().strip() not in (b"", b'""'):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("consul agent did not start")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.fixture(params=["kafka", "etcd", "consul"])
async def backend(
    request: pytest.FixtureRequest, broker: object, tmp_path: Path
) -> AsyncIterator[tuple[str, dict[str, RegistryBase]]]:
    """``(name, {instance_id: registry that instance writes through})``; every registry can also read.
    (``broker`` is named so that the Kafka backend runs on every broker engine the session tests.)

    Kafka heartbeats are signed by the instance itself, so each instance gets its own registry object."""
    name = request.param
    made: dict[str, RegistryBase] = {}
    if name == "kafka":
        settings: BusSettings = request.getfixturevalue("settings")
        keyring: Keyring = request.getfixturevalue("keyring")
        topic = await kafka_topic(settings)
        for pid in ("k1", "k2", "gateway-1"):
            made[pid] = KafkaRegistry(settings, keyring, producer_id=pid, topic=topic)
    elif name == "etcd":
        server: EtcdServer = request.getfixturevalue("etcd")
        prefix = f"/test/{uuid.uuid4().hex[:8]}/"
        for pid in ("k1", "k2", "gateway-1"):
            made[pid] = EtcdRegistry(server.url, prefix=prefix)
    else:
        host, port = request.getfixturevalue("consul_agent")
        for pid in ("k1", "k2", "gateway-1"):
            made[pid] = ConsulRegistry(host, port)
    for registry in made.values():
        await registry.start()
    try:
        yield name, made
    finally:
        for registry in made.values():
            await registry.stop()
