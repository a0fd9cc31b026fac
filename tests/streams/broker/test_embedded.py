"""The embedded Tansu broker: lifecycle, Kafka round trips, S3 durability across restarts, and the CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.broker import (
    BrokerStartError,
    EmbeddedBroker,
    EmbeddedBrokerConfig,
    find_tansu_binary,
    kafka_ready,
    read_status,
    stop_from_state,
)

pytestmark = pytest.mark.broker

REPO_ROOT = Path(__file__).resolve().parents[3]
# The same argparse wiring the medkiosk CLI uses, without depending on the medkiosk entry point.
CLI = (
    "import argparse, sys\n"
    "from streams.broker import add_broker_commands\n"
    "parser = argparse.ArgumentParser(prog='medkiosk')\n"
    "add_broker_commands(parser.add_subparsers(required=True))\n"
    "args = parser.parse_args()\n"
    "sys.exit(args.func(args))\n"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "broker", *args],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO_ROOT,
        check=False,
    )


@pytest.fixture
def memory_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path / "broker")) as broker:
        yield broker


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    # Tansu answers aiokafka's InitProducerId with UnknownError, so idempotence must stay off.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, key=b"kiosk-1")
        await producer.flush()
    finally:
        await producer.stop()


async def consume_all(bootstrap: str, tp: TopicPartition, expected: int, group_id: str | None = None) -> list[bytes]:
    # Manual assignment: a group join costs Tansu ~5 s, and nothing here needs a rebalance.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        values: list[bytes] = []
        while len(values) < expected:
            batch = await consumer.getmany(tp, timeout_ms=3000)
            if not batch:
                break
            values += [record.value for record in batch[tp]]
        return values
    finally:
        await consumer.stop()


@pytest.mark.timeout(20)
def test_binary_is_executable() -> None:
    binary = find_tansu_binary()
    assert binary.name == "tansu"
    assert os.access(binary, os.X_OK)


@pytest.mark.timeout(30)
def test_start_status_restart_stop(tmp_path: Path) -> None:
    state_dir = tmp_path / "broker"
    broker = EmbeddedBroker(EmbeddedBrokerConfig(state_dir=state_dir))
    assert not broker.is_running()
    assert read_status(state_dir) is None
    broker.start()
    try:
        first_pid = broker.pid
        assert broker.is_running() and first_pid is not None
        assert broker.bootstrap == f"127.0.0.1:{broker.port}"
        assert kafka_ready("127.0.0.1", broker.port)
        assert (state_dir / "broker.pid").read_text().strip() == str(first_pid)
        recorded = json.loads((state_dir / "broker.json").read_text())
        assert recorded["port"] == broker.port and recorded["storage"] == "memory" and recorded["moto"] is None
        status = read_status(state_dir)
        assert status is not None and status.running and status.ready and status.pid == first_pid

        broker.start()  # already running: a no-op
        assert broker.pid == first_pid

        with pytest.raises(BrokerStartError, match="already runs"):
            EmbeddedBroker(EmbeddedBrokerConfig(state_dir=state_dir)).start()

        port = broker.port
        broker.restart()
        assert broker.port == port and broker.pid != first_pid
        assert kafka_ready("127.0.0.1", port)
    finally:
        broker.stop()
    assert not broker.is_running()
    assert not pid_alive(first_pid)
    assert not kafka_ready("127.0.0.1", port, timeout_s=0.2)
    assert not (state_dir / "broker.pid").exists() and not (state_dir / "broker.json").exists()
    assert (state_dir / "broker.log").read_text().count("ready in") == 2
    assert read_status(state_dir) is None
    broker.stop()  # idempotent


@pytest.mark.timeout(20)
def test_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path, port=port))
        with pytest.raises(BrokerStartError, match="already in use"):
            broker.start()
    assert not broker.is_running()


@pytest.mark.timeout(30)
async def test_produce_and_consume(memory_broker: EmbeddedBroker) -> None:
    values = [b"check-in", b"triage", b"payment"]
    await create_topic(memory_broker.bootstrap, "kiosk.events")
    await produce(memory_broker.bootstrap, "kiosk.events", values)
    got = await consume_all(memory_broker.bootstrap, TopicPartition("kiosk.events", 0), len(values))
    assert got == values


@pytest.mark.timeout(30)
async def test_stop_does_not_wait_for_connected_clients(tmp_path: Path) -> None:
    # Tansu drains connections for 5 s on SIGTERM; the default stop signal (SIGINT) must not.
    broker = EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path))
    broker.start()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        started = time.monotonic()
        broker.restart()
        broker.stop()
        assert time.monotonic() - started < 2.0
    finally:
        broker.stop()
        await producer.stop()


@pytest.mark.timeout(45)
async def test_s3_storage_survives_broker_restart(tmp_path: Path) -> None:
    pytest.importorskip("moto", reason="the durable extra (moto) is not installed")
    tp = TopicPartition("kiosk.audit", 0)
    values = [f"event-{i}".encode() for i in range(20)]
    broker = EmbeddedBroker(EmbeddedBrokerConfig(state_dir=tmp_path / "broker", storage="s3"))
    with broker:
        moto_pid = json.loads((tmp_path / "broker" / "broker.json").read_text())["moto"]["pid"]
        assert broker.s3_endpoint is not None
        await create_topic(broker.bootstrap, tp.topic)
        await produce(broker.bootstrap, tp.topic, values)
        committer = AIOKafkaConsumer(
            bootstrap_servers=broker.bootstrap, group_id="audit-sink", enable_auto_commit=False
        )
        await committer.start()
        try:
            committer.assign([tp])
            await committer.commit({tp: 7})
        finally:
            await committer.stop()

        port, old_pid = broker.port, broker.pid
        broker.restart()
        assert broker.port == port and broker.pid != old_pid and pid_alive(moto_pid)

        assert await consume_all(broker.bootstrap, tp, len(values)) == values
        reader = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id="audit-sink", enable_auto_commit=False)
        await reader.start()
        try:
            reader.assign([tp])
            assert await reader.committed(tp) == 7
        finally:
            await reader.stop()
    assert not pid_alive(moto_pid)


@pytest.mark.timeout(45)
def test_cli_start_status_stop(tmp_path: Path) -> None:
    state_dir = tmp_path / "cli-broker"
    port = str(free_port())
    try:
        started = run_cli("start", "--port", port, "--state-dir", str(state_dir))
        assert started.returncode == 0, started.stderr
        assert f"127.0.0.1:{port}" in started.stdout

        status = run_cli("status", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["running"] and report["ready"] and report["bootstrap"] == f"127.0.0.1:{port}"
        broker_pid = report["pid"]

        again = run_cli("start", "--port", port, "--state-dir", str(state_dir))
        assert again.returncode == 0 and "already running" in again.stdout

        stopped = run_cli("stop", "--state-dir", str(state_dir))
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert not pid_alive(broker_pid)

        gone = run_cli("status", "--state-dir", str(state_dir))
        assert gone.returncode == 1 and json.loads(gone.stdout)["running"] is False
        assert "no broker running" in run_cli("stop", "--state-dir", str(state_dir)).stdout
    finally:
        stop_from_state(state_dir)


@pytest.mark.timeout(30)
def test_cli_foreground_stops_on_sigterm(tmp_path: Path) -> None:
    state_dir = tmp_path / "fg-broker"
    port = free_port()
    command = [sys.executable, "-c", CLI, "broker", "start", "--foreground"]
    command += ["--port", str(port), "--state-dir", str(state_dir)]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as cli:
        try:
            assert cli.stdout is not None
            assert "broker ready" in cli.stdout.readline()
            status = read_status(state_dir)
            assert status is not None and status.ready
            cli.send_signal(signal.SIGTERM)
            _, stderr = cli.communicate(timeout=15)
            assert cli.returncode == 0, stderr
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.communicate()
            stop_from_state(state_dir)
    assert not pid_alive(status.pid)
    assert not kafka_ready("127.0.0.1", port, timeout_s=0.2)
    assert read_status(state_dir) is None
