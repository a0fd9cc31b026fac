"""``medkiosk discover`` as processes: list and watch a real registry; a registered process killed with
SIGKILL (no deregistration) turns unhealthy within its TTL; a kiosk takes its Kafka bootstrap from etcd."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streams import BusSettings, Keyring
from streams.broker import EmbeddedBroker
from streams.discovery import Check, EtcdServer, KafkaRegistry, RegistrySettings, bootstrap_from_registry
from tests.streams.discovery.helpers import kafka_topic

pytestmark = [pytest.mark.broker]


def _medkiosk(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medkiosk", *argv], capture_output=True, text=True, timeout=60, env=env, check=False
    )


async def test_list_shows_the_fleet_with_health(settings: BusSettings, keyring: Keyring, keys_dir: Path) -> None:
    topic = await kafka_topic(settings)
    for pid, ttl in (("k1", 60.0), ("k2", 1.0)):
        writer = KafkaRegistry(settings, keyring, producer_id=pid, topic=topic)
        await writer.register(
            service="kiosk",
            instance_id=pid,
            address="127.0.0.1",
            port=1,
            meta={"hospital": "H1"},
            check=Check(ttl_s=ttl),
        )
        await writer.stop()
    await asyncio.sleep(1.2)
    common = ["--bootstrap", settings.bootstrap_servers, "--keys-dir", str(keys_dir), "--topic", topic]
    out = await asyncio.to_thread(_medkiosk, "discover", "list", "--json", *common)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["instance_id"], r["healthy"]) for r in rows] == [("k1", True), ("k2", False)]
    table = await asyncio.to_thread(_medkiosk, "discover", "list", "--service", "kiosk", *common)
    assert "k1" in table.stdout and "UNHEALTHY" in table.stdout
    watched = await asyncio.to_thread(_medkiosk, "discover", "watch", "--count", "1", *common)
    assert [i["instance_id"] for i in json.loads(watched.stdout.splitlines()[0])["instances"]] == ["k1", "k2"]


def test_killed_process_turns_unhealthy_within_ttl(etcd: EtcdServer, broker: EmbeddedBroker, keys_dir: Path) -> None:
    common = ["--backend", "etcd", "--etcd-url", etcd.url]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medkiosk",
            "discover",
            "register",
            "--service",
            "kafka",
            "--instance",
            "broker-1",
            "--endpoint",
            broker.bootstrap,
            "--tcp-check",
            "--ttl-s",
            "2",
            *common,
        ],
    )
    try:
        settings = RegistrySettings(backend="etcd", etcd_url=etcd.url, bootstrap_service="kafka")
        deadline = time.monotonic() + 30
        while bootstrap_from_registry(settings) != broker.bootstrap:
            assert time.monotonic() < deadline, "broker never showed up in the registry"
            time.sleep(0.2)
        # A kiosk (any service) started with the registry settings takes the bootstrap list from etcd.
        env = {
            **os.environ,
            "MEDKIOSK_REGISTRY_BACKEND": "etcd",
            "MEDKIOSK_REGISTRY_ETCD_URL": etcd.url,
            "MEDKIOSK_REGISTRY_BOOTSTRAP_SERVICE": "kafka",
            "MEDKIOSK_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        }
        probe = subprocess.run(
            [
                sys.executable,
                "-c",
                "import argparse; from streams._service import service_context as s; "
                "import sys; print(s(argparse.Namespace(keys_dir=sys.argv[1]), 'probe').settings.bootstrap_servers)",
                str(keys_dir),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert probe.stdout.strip() == broker.bootstrap, probe.stderr
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        while bootstrap_from_registry(settings) is not None:
            assert time.monotonic() - killed < 2 + 2, "still healthy past its TTL after SIGKILL"
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_list_says_when_the_registry_cannot_be_read(keys_dir: Path) -> None:
    from streams.broker import free_port

    out = _medkiosk("discover", "list", "--bootstrap", f"127.0.0.1:{free_port()}", "--keys-dir", str(keys_dir))
    assert out.returncode == 2
    assert "the registry cannot be read" in out.stderr and "Traceback" not in out.stderr
