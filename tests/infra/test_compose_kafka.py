"""compose.yaml's secured Kafka, run here for real: the `kafka` service's own script (infra/kafka/compose-kafka.sh)
on the Apache Kafka jars setup fetched, its admin written by the `kafka-users` script, then the `acls` service's
command and the `topics` service through the `sasl` entrypoint. Every compose process's principal then logs in
with the password in its own credential volume, and the broker refuses what the plan does not allow.

No Docker engine here: the container paths are mapped to folders, the listeners to free ports on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError
from pydantic import SecretStr

from streams import KIOSK_IDENTITY, BusSettings, hospital_topic
from streams.broker import KafkaNotInstalled, KafkaSecurity, find_java, find_kafka_libs, free_port
from streams.broker._kafka import _sasl_ready
from tests.infra.test_infra_files import COMPOSE, ROOT, _volume_mounts
from tests.infra.test_infra_files import kafka_users_run as kafka_users_run  # the fixture, shared

pytestmark = pytest.mark.broker


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def _shims(folder: Path) -> Path:
    """kafka-storage.sh and kafka-server-start.sh as the image has them, over the jars setup fetched."""
    try:
        libs, java = find_kafka_libs(), find_java()
    except KafkaNotInstalled as exc:
        pytest.skip(f"Apache Kafka not installed: {exc}")
    folder.mkdir()
    jvm = "-Xmx512m -Xms64m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true"
    for name, main in (("kafka-storage.sh", "kafka.tools.StorageTool"), ("kafka-server-start.sh", "kafka.Kafka")):
        path = folder / name
        path.write_text(f'#!/bin/sh\nexec "{java}" {jvm} -cp "{libs}/*" {main} "$@"\n')
        path.chmod(0o755)
    return folder


class ComposeKafka:
    def __init__(self, root: Path, bootstrap: str, admin: KafkaSecurity) -> None:
        self.root = root
        self.bootstrap = bootstrap
        self.admin = admin

    def volume(self, name: str) -> Path:
        return self.root / "volumes" / name

    def settings(self, volume: str) -> BusSettings:
        folder = self.volume(volume)
        return BusSettings(
            bootstrap_servers=self.bootstrap,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-512",
            sasl_username=(folder / "username").read_text(),
            sasl_password=SecretStr((folder / "password").read_text()),
            request_timeout_ms=5000,
        )


def _env(services: dict[str, dict[str, Any]], name: str, bootstrap: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDKIOSK_")}
    env.update({k: str(v) for k, v in services[name]["environment"].items()})
    env |= {"MEDKIOSK_BOOTSTRAP_SERVERS": bootstrap, "MEDKIOSK_METRICS_PORT": "0"}
    return env


def _in_container(argv: list[str], folders: dict[str, Path]) -> list[str]:
    out = []
    for arg in argv:
        for container_path, here in folders.items():
            if arg == container_path or arg.startswith(container_path + "/"):
                arg = str(here) + arg[len(container_path) :]
        out.append(arg)
    return out


@pytest.fixture(scope="module")
def compose_kafka(
    request: pytest.FixtureRequest, services: dict[str, dict[str, Any]], kafka_users_run: Path
) -> Iterator[ComposeKafka]:
    if request.config.getoption("--broker-engine") == "tansu":
        pytest.skip("--broker-engine tansu: Apache Kafka tests not selected")
    root = kafka_users_run
    bin_dir = _shims(root / "kafka-bin")
    internal, controller, external = free_port(), free_port(), free_port()
    kafka = services["kafka"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "MEDKIOSK_"))}
    env.update({k: str(v) for k, v in kafka["environment"].items()})
    env |= {
        "KAFKA_LISTENERS": f"INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller},"
        f"EXTERNAL://127.0.0.1:{external}",
        "KAFKA_ADVERTISED_LISTENERS": f"INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}",
        "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{controller}",
        "KAFKA_LOG_DIRS": str(root / "kafka-data"),
        "KAFKA_NUM_NETWORK_THREADS": "2",
        "KAFKA_NUM_IO_THREADS": "2",
        "KAFKA_BIN": str(bin_dir),
        "KAFKA_PROPERTIES_FILE": str(root / "kafka-run" / "server.properties"),
        "KAFKA_CLIENT_PROPERTIES": str(root / "kafka-run" / "client.properties"),
        "MEDKIOSK_KAFKA_ADMIN_DIR": str(root / "volumes" / _volume_mounts(kafka)["/run/kafka"][0]),
    }
    script = ROOT / _volume_mounts(kafka)["/medkiosk/compose-kafka.sh"][0]
    assert kafka["entrypoint"][0] == "/bin/sh"
    log = (root / "kafka.log").open("wb")
    proc = subprocess.Popen(
        ["/bin/sh", str(script)], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    admin_dir = root / "volumes" / "kafka-broker-admin"
    admin = KafkaSecurity(
        admin_user=(admin_dir / "username").read_text(), admin_password=(admin_dir / "password").read_text()
    )
    bootstrap = f"127.0.0.1:{internal}"
    try:
        deadline = time.monotonic() + 120
        while not _sasl_ready(bootstrap, admin, 2.0):
            assert proc.poll() is None, (root / "kafka.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "compose Kafka not ready:\n" + (root / "kafka.log").read_text()[-3000:]
            time.sleep(0.5)
        yield ComposeKafka(root, bootstrap, admin)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_broker_properties_keep_the_password_out_of_env(compose_kafka: ComposeKafka) -> None:
    props = (compose_kafka.root / "kafka-run" / "server.properties").read_text()
    assert f"super.users=User:{compose_kafka.admin.admin_user}" in props
    assert "allow.everyone.if.no.acl.found=false" in props
    assert (compose_kafka.root / "kafka-run" / "server.properties").stat().st_mode & 0o077 == 0


def test_acls_job_then_every_principal_logs_in_with_its_own_volume(
    compose_kafka: ComposeKafka, services: dict[str, dict[str, Any]]
) -> None:
    root, bootstrap = compose_kafka.root, compose_kafka.bootstrap
    folders = {"/keys": root / "roles" / "public", "/creds": root / "creds"}
    acls = subprocess.run(
        [sys.executable, "-m", "medkiosk", *_in_container(services["acls"]["command"], folders)],
        env=_env(services, "acls", bootstrap),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert acls.returncode == 0, acls.stdout + acls.stderr
    assert "SCRAM-SHA-512 users" in acls.stdout and "ACLs" in acls.stdout
    # The topics service, through the same `sasl` entrypoint the other services use (its admin volume).
    sh, flag, script, arg0 = services["topics"]["entrypoint"]
    script = script.replace("$$", "$").replace("/run/kafka", str(root / "volumes" / "kafka-admin"))
    script = script.replace("exec medkiosk", f"exec {sys.executable} -m medkiosk")
    topics = subprocess.run(
        [
            sh,
            flag,
            script,
            arg0,
            *services["topics"]["command"],
            "--hospital",
            "hospital-a",
            "--hospital",
            "hospital-b",
        ],
        env=_env(services, "topics", bootstrap) | {"MEDKIOSK_TOPIC_PARTITIONS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert topics.returncode == 0, topics.stdout + topics.stderr

    async def check() -> None:
        # Each compose process's principal logs in with its own volume's password (the user exists) ...
        clients = {
            n: s["environment"]["MEDKIOSK_SASL_USERNAME"]
            for n, s in services.items()
            if "MEDKIOSK_SASL_USERNAME" in s.get("environment", {})
        }
        for name, user in sorted(clients.items()):
            volume = _volume_mounts(services[name])["/run/kafka"][0]
            settings = compose_kafka.settings(volume)
            assert settings.sasl_username == user
            producer = AIOKafkaProducer(**settings.kafka_kwargs())
            await asyncio.wait_for(producer.start(), 30)
            await producer.stop()
        # ... and gets what the plan gives it, nothing more: kiosk-a1 writes its topic; hospital-a's subscriber
        # cannot read hospital-b's.
        kiosk = AIOKafkaProducer(**compose_kafka.settings("kafka-kiosk-a1").kafka_kwargs(), acks="all")
        await kiosk.start()
        try:
            await asyncio.wait_for(kiosk.send_and_wait(KIOSK_IDENTITY.name, b"v", key=b"kiosk-a1"), 20)
        finally:
            await kiosk.stop()
        reader = AIOKafkaConsumer(
            hospital_topic("hospital-b"), **compose_kafka.settings("kafka-hospital-hospital-a").consumer_kwargs()
        )
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await reader.start()
                for _ in range(20):
                    await reader.getmany(timeout_ms=250)
                    if hospital_topic("hospital-b") in reader._client.cluster.unauthorized_topics:
                        raise TopicAuthorizationFailedError(hospital_topic("hospital-b"))
        finally:
            await reader.stop()

    asyncio.run(check())
