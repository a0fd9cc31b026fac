"""The Apache Kafka 4 launcher (KRaft, one combined node): lifecycle, state files, durability across a
restart and a kill -9, idempotent and transactional producers, and the CLI."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from streams.broker import (
    BrokerStartError,
    KafkaBroker,
    KafkaBrokerConfig,
    KafkaNotInstalled,
    find_kafka_libs,
    free_port,
    kafka_ready,
    read_status,
    stop_from_state,
)

pytestmark = pytest.mark.broker


@pytest.fixture(autouse=True, scope="module")
def _kafka_selected(request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--broker-engine") == "tansu":
        pytest.skip("--broker-engine tansu: Apache Kafka tests not selected")


REPO_ROOT = Path(__file__).resolve().parents[3]
CLI = (
    "import argparse, sys\n"
    "from streams.broker import add_broker_commands\n"
    "parser = argparse.ArgumentParser(prog='medkiosk')\n"
    "add_broker_commands(parser.add_subparsers(required=True))\n"
    "args = parser.parse_args()\n"
    "sys.exit(args.func(args))\n"
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    """One node for the lifecycle tests of this module (each JVM start costs a few seconds)."""
    broker = KafkaBroker(KafkaBrokerConfig(state_dir=tmp_path_factory.mktemp("kafka-node")))
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, values: list[bytes], **kwargs: object) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **kwargs)
    await producer.start()
    try:
        for value in values:
            await producer.send(topic, value, key=b"kiosk-1")
        await producer.flush()
    finally:
        await producer.stop()


async def read_all(bootstrap: str, tp: TopicPartition, isolation_level: str = "read_uncommitted") -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level=isolation_level)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            values += [record.value for record in batch.get(tp, [])]
        return values
    finally:
        await consumer.stop()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CLI, "broker", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=False,
    )


def test_jars_are_installed() -> None:
    libs = find_kafka_libs()
    assert any(libs.glob("kafka_2.13-4.4.0.jar")), "make setup fetches org.apache.kafka:kafka_2.13:4.4.0"


def test_missing_jars_are_reported(tmp_path: Path) -> None:
    broker = KafkaBroker(KafkaBrokerConfig(state_dir=tmp_path / "k", libs_dir=tmp_path / "nowhere"))
    with pytest.raises(KafkaNotInstalled, match="no Apache Kafka jars"):
        broker.start()
    assert not broker.is_running()


@pytest.mark.timeout(120)
async def test_state_files_restart_and_kill_9_keep_acknowledged_records(node: KafkaBroker) -> None:
    state_dir = node.config.state_dir
    recorded = json.loads((state_dir / "broker.json").read_text())
    assert recorded["engine"] == "kafka" and recorded["port"] == node.port and recorded["storage"] == "disk"
    assert (state_dir / "broker.pid").read_text().strip() == str(node.pid)
    status = read_status(state_dir)
    assert status is not None and status.engine == "kafka" and status.running and status.ready
    assert status.cluster_id and status.pid == node.pid

    with pytest.raises(BrokerStartError, match="already runs"):
        KafkaBroker(KafkaBrokerConfig(state_dir=state_dir)).start()

    tp = TopicPartition("kiosk.durable", 0)
    await create_topic(node.bootstrap, tp.topic)
    await produce(node.bootstrap, tp.topic, [f"a{i}".encode() for i in range(50)], enable_idempotence=True)
    committer = AIOKafkaConsumer(bootstrap_servers=node.bootstrap, group_id="durable-sink", enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([tp])
        await committer.commit({tp: 17})
    finally:
        await committer.stop()

    port, first_pid = node.port, node.pid
    node.restart()
    assert node.port == port and node.pid != first_pid
    assert status.cluster_id == read_status(state_dir).cluster_id  # type: ignore[union-attr]
    await produce(node.bootstrap, tp.topic, [f"b{i}".encode() for i in range(50)], enable_idempotence=True)

    # A crash: no controlled shutdown. Records acknowledged with acks=all are in the log files.
    node.kill()
    assert not kafka_ready("127.0.0.1", port, timeout_s=0.3)
    node.start()
    assert node.port == port
    values = await read_all(node.bootstrap, tp)
    assert values == [f"a{i}".encode() for i in range(50)] + [f"b{i}".encode() for i in range(50)]
    reader = AIOKafkaConsumer(bootstrap_servers=node.bootstrap, group_id="durable-sink", enable_auto_commit=False)
    await reader.start()
    try:
        reader.assign([tp])
        assert await reader.committed(tp) == 17
    finally:
        await reader.stop()


@pytest.mark.timeout(60)
async def test_transactions_and_read_committed(node: KafkaBroker) -> None:
    tp = TopicPartition("kiosk.tx", 0)
    await create_topic(node.bootstrap, tp.topic)
    producer = AIOKafkaProducer(bootstrap_servers=node.bootstrap, transactional_id="tx-test")
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(tp.topic, b"committed", key=b"k")
        await producer.begin_transaction()
        await producer.send(tp.topic, b"aborted", key=b"k")
        await producer.abort_transaction()
    finally:
        await producer.stop()
    assert await read_all(node.bootstrap, tp, isolation_level="read_committed") == [b"committed"]


def test_port_in_use_is_refused(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        broker = KafkaBroker(KafkaBrokerConfig(state_dir=tmp_path, port=port))
        with pytest.raises(BrokerStartError, match="already in use"):
            broker.start()
    assert not broker.is_running()


@pytest.mark.timeout(120)
def test_cli_start_status_stop(tmp_path: Path) -> None:
    state_dir = tmp_path / "cli-kafka"
    port = str(free_port())
    try:
        started = run_cli("start", "--engine", "kafka", "--port", port, "--state-dir", str(state_dir))
        assert started.returncode == 0, started.stderr
        assert f"broker ready at 127.0.0.1:{port} (Apache Kafka" in started.stdout

        status = run_cli("status", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stdout
        reported = json.loads(status.stdout)
        assert reported["engine"] == "kafka" and reported["running"] and reported["ready"]
        assert reported["bootstrap"] == f"127.0.0.1:{port}"

        again = run_cli("start", "--engine", "kafka", "--port", port, "--state-dir", str(state_dir))
        assert again.returncode == 0 and "already running" in again.stdout

        stopped = run_cli("stop", "--state-dir", str(state_dir))
        assert stopped.returncode == 0 and "broker stopped" in stopped.stdout
        assert not kafka_ready("127.0.0.1", int(port), timeout_s=0.3)
        assert run_cli("status", "--state-dir", str(state_dir)).returncode == 1
    finally:
        stop_from_state(state_dir)


def test_cli_refuses_secured_tansu(tmp_path: Path) -> None:
    done = run_cli("start", "--engine", "tansu", "--secured", "--state-dir", str(tmp_path))
    assert done.returncode == 2 and "needs --engine kafka" in done.stderr
