"""``medkiosk outbox drain`` sends an orphaned outbox: a producer killed (-9) while Kafka was unreachable left
its sealed events on its volume; the drain delivers every one, in order, exactly once, with no keys at hand."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import MedicalRecord
from streams import init_dev_keys
from streams.broker import EmbeddedBroker, free_port

pytestmark = [pytest.mark.slow, pytest.mark.broker]

MEDKIOSK = [sys.executable, "-m", "medkiosk"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MEDKIOSK_")}


def _depth(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
        except sqlite3.OperationalError:  # created, schema not there yet
            return 0


async def _envelopes_of(bootstrap: str, topic: str, partitions: int, key: bytes, expected: int) -> list[MedicalRecord]:
    """Records of ``topic`` under ``key``, read from the start until ``expected`` are in and the log is quiet."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        out: list[MedicalRecord] = []
        deadline, quiet = time.monotonic() + 30, 0
        while time.monotonic() < deadline and (len(out) < expected or quiet < 3):
            batch = await consumer.getmany(timeout_ms=300)
            quiet = 0 if batch else quiet + 1
            for records in batch.values():
                for rec in records:
                    if rec.key == key:
                        env = MedicalRecord()
                        env.ParseFromString(rec.value)
                        out.append(env)
        return out
    finally:
        await consumer.stop()


def test_drain_orphaned_outbox_after_kill(broker: EmbeddedBroker, tmp_path: Path) -> None:
    kiosk = f"drain-{uuid.uuid4().hex[:8]}"
    keys, state = tmp_path / "keys", tmp_path / "state"
    init_dev_keys(keys, hospitals=["H1"], kiosks={kiosk: "H1"}, services=[])
    apply = subprocess.run(
        [sys.executable, "-m", "medkiosk", "topics", "apply", "--bootstrap", broker.bootstrap, "--hospital", "H1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # Other tests on the shared broker may have made these topics already, with their own partition counts:
        # ask for one partition so any existing topic is enough (the count actually there is read below).
        env={**_env(), "MEDKIOSK_TOPIC_PARTITIONS": "1"},
    )
    assert apply.returncode == 0, apply.stderr
    reports = {r["topic"]: r for r in map(json.loads, apply.stdout.splitlines())}
    partitions = int(reports["kiosk.identity.v1"]["partitions"])

    # A producer that cannot reach Kafka (nothing listens there): its events pile up in its outbox.
    dead = f"127.0.0.1:{free_port()}"
    paths = ["--bootstrap", dead, "--keys-dir", str(keys), "--state-dir", str(state), "--metrics-port", "0"]
    proc = subprocess.Popen(
        [*MEDKIOSK, "kiosk", "simulate", "--kiosk-id", kiosk, "--hospital", "H1", "--rate", "50", *paths],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=_env(),
    )
    db = state / kiosk / "outbox.db"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (db.exists() and _depth(db) >= 20):
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    left_behind = _depth(db)
    assert left_behind >= 20

    # Drain with no keys directory at all: the rows are already signed.
    drain = subprocess.run(
        [*MEDKIOSK, "outbox", "drain", "--state-dir", str(state), "--bootstrap", broker.bootstrap, "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**_env(), "MEDKIOSK_KEYS_DIR": str(tmp_path / "no-keys-here")},
    )
    assert drain.returncode == 0, drain.stdout + drain.stderr
    (line,) = drain.stdout.splitlines()
    assert json.loads(line) == {"outbox": str(db), "before": left_behind, "sent": left_behind, "left": 0}
    assert _depth(db) == 0

    envelopes = asyncio.run(
        _envelopes_of(broker.bootstrap, "kiosk.identity.v1", partitions, kiosk.encode(), left_behind)
    )
    assert [e.seq for e in envelopes] == list(range(1, left_behind + 1)), "every event once, in order"
    assert {e.producer_id for e in envelopes} == {kiosk}

    # The chain state stays with the volume: the producer carries on from where it was.
    with sqlite3.connect(db) as conn:
        (seq,) = conn.execute("SELECT seq FROM chains WHERE producer_id = ?", (kiosk,)).fetchone()
    assert seq == left_behind

    again = subprocess.run(
        [sys.executable, "-m", "medkiosk", "outbox", "drain", "--path", str(db), "--bootstrap", broker.bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(),
    )
    assert again.returncode == 0
    assert json.loads(again.stdout) == {"outbox": str(db), "before": 0, "sent": 0, "left": 0}


def test_drain_reports_rows_it_could_not_send(tmp_path: Path) -> None:
    from streams import Outbox

    db = tmp_path / "state" / "gone-producer" / "outbox.db"
    outbox = Outbox(db)
    outbox.put(raw=[("kiosk.identity.v1", b"k", b"sealed-bytes")])
    outbox.close()
    dead = ["--bootstrap", f"127.0.0.1:{free_port()}"]
    proc = subprocess.run(
        [*MEDKIOSK, "outbox", "drain", "--state-dir", str(tmp_path / "state"), "--timeout", "2", *dead],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(),
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert json.loads(proc.stdout.splitlines()[-1])["left"] == 1
    assert _depth(db) == 1, "nothing is deleted without the broker's acknowledgement"
    missing = subprocess.run(
        [sys.executable, "-m", "medkiosk", "outbox", "drain", "--path", str(tmp_path / "nope.db")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=_env(),
    )
    assert missing.returncode == 2
