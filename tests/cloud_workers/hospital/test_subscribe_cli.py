"""``medkiosk subscribe --format fhir`` as its own process on the real broker: FHIR Bundles to --output,
nothing decrypted on stdout."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from fhir.resources.bundle import Bundle
from fhir.resources.subscriptiontopic import SubscriptionTopic

from streams import BusSettings, Keyring, TopicSpec, apply_topics, hospital_topic, init_dev_keys
from tests.cloud_workers.hospital.sealing import Chain, identity, triage

pytestmark = pytest.mark.broker


def test_subscription_topic_command() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", "subscribe", "--hospital", "H1", "--subscription-topic"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    topic = SubscriptionTopic.model_validate(json.loads(proc.stdout))
    assert topic.identifier[0].value == "hospital.H1.events.v1"


async def _publish(settings: BusSettings, topic: str, kiosk: str, values: list[bytes]) -> None:
    await apply_topics(settings, [TopicSpec(name=topic, key="kiosk id", content="t", partitions=1)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=kiosk.encode())
    finally:
        await producer.stop()


def test_fhir_lines_go_to_output_only(settings: BusSettings, tmp_path: Path) -> None:
    hospital, kiosk = f"HF{uuid.uuid4().hex[:6]}", f"kf{uuid.uuid4().hex[:6]}"
    keys = tmp_path / "keys"
    init_dev_keys(keys, hospitals=[hospital], kiosks={kiosk: hospital})
    keyring = Keyring.load(keys)
    topic = hospital_topic(hospital)
    chain = Chain(keyring, kiosk, hospital)
    records = [chain.seal(identity(kiosk, hospital, 1)), chain.seal(triage(kiosk, hospital, 2))]
    asyncio.run(_publish(settings, topic, kiosk, [r.SerializeToString() for r in records]))
    out = tmp_path / "fhir.jsonl"
    argv = ["subscribe", "--hospital", hospital, "--format", "fhir", "--output", str(out), "--max-events", "2"]
    argv += ["--bootstrap", settings.bootstrap_servers, "--keys-dir", str(keys), "--state-dir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", *argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    bundles = [Bundle.model_validate_json(line) for line in out.read_text().splitlines()]
    assert [b.entry[1].resource.get_resource_type() for b in bundles] == ["Encounter", "Observation"]
    assert "CARD0001" in out.read_text()
    assert proc.stdout == ""  # decrypted content leaves through --output only
    assert "CARD0001" not in proc.stderr
