"""The first slice end to end, every role its own process on the real broker:
kiosks -> gateway -> hospital subscribers, with isolation between hospitals and an audit trail."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from cloud_workers.audit import replay_topic
from cloud_workers.gateway import Gateway, GatewayConfig
from schemas import RejectReason
from streams import AUDIT, BusMetrics, BusSettings, EnvelopeRejected, Keyring, hospital_topic, open_envelope
from streams.broker import EmbeddedBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def _medkiosk(*argv: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medkiosk", *argv], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def up_run(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    state = tmp_path_factory.mktemp("up")
    proc = _medkiosk(
        "up",
        "--bootstrap",
        broker.bootstrap,
        "--hospitals",
        "2",
        "--kiosks",
        "2",
        "--rate",
        "10",
        "--duration",
        # Long enough that kiosks which start slowly on a busy machine (imports, first connect) still publish.
        "12",
        "--kiosk-mode",
        "simulated",
        "--state-dir",
        str(state),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"summary": summary, "state": state, "bootstrap": broker.bootstrap}


def test_every_event_reaches_exactly_its_hospital_once(up_run: dict[str, Any]) -> None:
    s = up_run["summary"]
    assert s["published"] > 0
    assert (s["delivered"], s["lost"], s["duplicates"], s["misrouted"], s["rejected"]) == (s["published"], 0, 0, 0, 0)
    out = up_run["state"] / "up" / "out"
    for hospital in ("H01", "H02"):
        lines = [json.loads(x) for x in (out / f"{hospital}.jsonl").read_text().splitlines()]
        assert lines, hospital
        assert {x["hospital_id"] for x in lines} == {hospital}
        assert {x["producer_id"] for x in lines} == {f"kiosk-{hospital}-01", f"kiosk-{hospital}-02"}
        assert all(x["event"]["synthetic"] for x in lines)


def test_the_gateway_holds_no_hospital_key(up_run: dict[str, Any], tmp_path: Path) -> None:
    gateway_keys = up_run["state"] / "up" / "keys" / "gateway-1"
    assert (gateway_keys / "signing" / "gateway-1").is_dir()
    assert not (gateway_keys / "data").exists()
    assert Keyring.load(gateway_keys).data_key_ids == []
    full = Keyring.load(up_run["state"] / "keys")
    with pytest.raises(RuntimeError, match="must not hold hospital data keys"):
        Gateway(GatewayConfig(outbox_path=tmp_path / "o.db"), BusSettings(), full, BusMetrics("t"))


async def _raw(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    out: list[bytes] = []
    try:
        idle = 0
        while idle < 5:
            batch = await consumer.getmany(timeout_ms=200)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                out.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return out


def test_one_hospital_cannot_read_another(up_run: dict[str, Any]) -> None:
    h01 = Keyring.load(up_run["state"] / "up" / "keys" / "hospital-H01")
    h02_topic = asyncio.run(_raw(up_run["bootstrap"], hospital_topic("H02")))
    assert h02_topic
    for raw in h02_topic:
        with pytest.raises(EnvelopeRejected) as info:
            open_envelope(raw, h01)
        assert info.value.reason == RejectReason.REJECT_REASON_UNKNOWN_DATA_KEY


def test_audit_log_verifies(up_run: dict[str, Any]) -> None:
    keys = up_run["state"] / "up" / "keys" / "gateway-1"
    settings = BusSettings(bootstrap_servers=up_run["bootstrap"])
    report = asyncio.run(replay_topic(settings, Keyring.load(keys), AUDIT.name))
    assert report.bad == 0
    assert report.verified >= up_run["summary"]["published"]
    proc = _medkiosk(
        "audit", "replay", "--topic", hospital_topic("H01"), "--bootstrap", up_run["bootstrap"], "--keys-dir", str(keys)
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
