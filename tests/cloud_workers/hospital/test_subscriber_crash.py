"""kill -9 of a running ``medkiosk subscribe``: after the restart every event is in the output (none lost),
re-deliveries are bounded by one commit group, and each is recognisable by (producer, stream, seq)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from streams import BusSettings, Keyring, TopicSpec, apply_topics, hospital_topic, init_dev_keys
from tests.cloud_workers.hospital.sealing import Chain, identity

pytestmark = [pytest.mark.broker, pytest.mark.slow]


async def _publish(settings: BusSettings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"k")
    finally:
        await producer.stop()


def _lines(path: Path) -> list[tuple[str, str, int]]:
    if not path.exists():
        return []
    out = []
    text = path.read_text()
    for line in text[: text.rfind("\n") + 1].splitlines():  # complete lines only (one may be mid-write)
        obj = json.loads(line)
        out.append((obj["producer_id"], obj["stream"], int(obj["seq"])))
    return out


def _wait(cond: object, within: float) -> None:
    deadline = time.monotonic() + within
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_kill_9_loses_nothing(settings: BusSettings, tmp_path: Path) -> None:
    hospital, kiosk = f"HK{uuid.uuid4().hex[:6]}", f"kk{uuid.uuid4().hex[:6]}"
    keys = tmp_path / "keys"
    init_dev_keys(keys, hospitals=[hospital], kiosks={kiosk: hospital})
    keyring = Keyring.load(keys)
    topic = hospital_topic(hospital)
    asyncio.run(apply_topics(settings, [TopicSpec(name=topic, key="kiosk id", content="t", partitions=1)]))
    chain = Chain(keyring, kiosk, hospital)
    sealed = [chain.seal(identity(kiosk, hospital, i)).SerializeToString() for i in range(1, 301)]
    out = tmp_path / "events.jsonl"
    argv = [sys.executable, "-m", "medkiosk", "subscribe", "--hospital", hospital, "--output", str(out)]
    argv += ["--bootstrap", settings.bootstrap_servers, "--keys-dir", str(keys), "--state-dir", str(tmp_path)]
    env = {**os.environ, "MEDKIOSK_LOG_LEVEL": "WARNING"}

    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        asyncio.run(_publish(settings, topic, sealed[:150]))
        _wait(lambda: len(_lines(out)) >= 100, 90)
        first.send_signal(signal.SIGKILL)  # mid-stream: some settled records are not committed yet
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    asyncio.run(_publish(settings, topic, sealed[150:]))
    second = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait(lambda: {seq for _, _, seq in _lines(out)} >= set(range(1, 301)), 120)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
    seen = Counter(_lines(out))
    assert {seq for _, _, seq in seen} == set(range(1, 301))  # nothing lost
    repeated = sum(n - 1 for n in seen.values())
    assert repeated <= 200  # at most one commit group (commit_every) is delivered again
