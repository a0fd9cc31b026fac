"""The transactional gateway on Apache Kafka: a real ``medkiosk gateway --transactional`` process killed with
SIGKILL mid-stream, twice, then restarted. ``read_committed`` readers see every event exactly once on the wire
(no duplicate even before dedupe), in order, and an audit chain with no gap and no reused seq. Skipped on the
embedded Tansu broker, which has no transactions (the outbox path covers it)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import AuditRecord, IdentityCheck
from streams import (
    AUDIT,
    KIOSK_IDENTITY,
    BusSettings,
    ChainState,
    ChainTracker,
    ChainVerdict,
    EnvelopeRejected,
    Keyring,
    apply_topics,
    envelope_hash,
    export_role,
    hospital_topic,
    init_dev_keys,
    open_envelope,
    seal,
    topics_for,
)
from streams.broker import LocalBroker

pytestmark = [pytest.mark.broker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]


async def _committed(settings: BusSettings, topic: str, *, quiet_polls: int = 4, max_s: float = 120.0) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        group_id=None,
    )
    await consumer.start()
    out: list[bytes] = []
    quiet = 0
    deadline = asyncio.get_running_loop().time() + max_s
    try:
        while quiet < quiet_polls and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=250)
            got = [r.value or b"" for rs in batch.values() for r in rs]
            out += got
            quiet = 0 if got else quiet + 1
    finally:
        await consumer.stop()
    return out


def _gateway(bootstrap: str, keys: Path, state: Path, group: str, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "medkiosk",
            "gateway",
            "--transactional",
            "--group",
            group,
            "--bootstrap",
            bootstrap,
            "--keys-dir",
            str(keys),
            "--state-dir",
            str(state),
        ],
        cwd=ROOT,
        env={**os.environ, "MEDKIOSK_ENABLE_IDEMPOTENCE": "true", "MEDKIOSK_LOG_LEVEL": "INFO"},
        stdout=out,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.timeout(420)
async def test_kill_9_mid_stream_no_duplicate_no_loss_chains_intact(
    broker: LocalBroker, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if broker.engine != "kafka":
        pytest.skip("the embedded Tansu broker has no transactions; the outbox gateway is tested on both engines")
    broker = request.getfixturevalue("own_broker")
    hospital = f"HT{uuid.uuid4().hex[:6]}"
    keys = tmp_path / "keys"
    init_dev_keys(keys, hospitals=[hospital], kiosks={"kt": hospital}, services=["gateway-1"])
    export_role(keys, tmp_path / "gw", producer_id="gateway-1")
    settings = BusSettings(bootstrap_servers=broker.bootstrap, keys_dir=keys, topic_partitions=2)
    out_topic = hospital_topic(hospital)
    await apply_topics(settings, topics_for([hospital]))
    keyring = Keyring.load(keys)
    chain, wire = ChainState(), []
    n = 3000
    for i in range(n):
        rec, chain = seal(
            IdentityCheck(kiosk_id="kt", hospital_id=hospital, skew_ns=i),
            signing_key=keyring.signing_key("kt"),
            chain=chain,
            hospital_id=hospital,
            data_key=keyring.latest_data_key(hospital),
            stream=KIOSK_IDENTITY.name,
        )
        wire.append(rec.SerializeToString())

    async def offer() -> None:
        """The kiosk's traffic arrives while the gateways run (about 200/s), so the kills land mid-stream."""
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
        await producer.start()
        try:
            for start in range(0, n, 20):
                for v in wire[start : start + 20]:
                    await producer.send(KIOSK_IDENTITY.name, v, key=b"kt")
                await producer.flush()
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()

    group = f"gw-txn-{uuid.uuid4().hex[:6]}"
    at_kill = []
    offering = asyncio.create_task(offer())
    for kill_after in (300, 1200):
        gw = _gateway(broker.bootstrap, tmp_path / "gw", tmp_path / "state", group, tmp_path / "gateway.log")
        try:
            for _ in range(150):
                if len(await _committed(settings, out_topic, quiet_polls=1, max_s=1.5)) >= kill_after:
                    break
                await asyncio.sleep(0.1)
        finally:
            gw.send_signal(signal.SIGKILL)
            gw.wait(30)
        at_kill.append(len(await _committed(settings, out_topic)))
    assert at_kill[0] < n, f"the first kill came after everything was routed ({at_kill})"
    await offering
    gw = _gateway(broker.bootstrap, tmp_path / "gw", tmp_path / "state", group, tmp_path / "gateway.log")
    try:
        for _ in range(300):
            if len(await _committed(settings, out_topic, quiet_polls=1, max_s=1.5)) >= n:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # anything extra would show up now
        delivered = await _committed(settings, out_topic)
    finally:
        gw.terminate()
        gw.wait(30)

    logs = (tmp_path / "gateway.log").read_text(errors="replace")[-3000:]
    assert len(delivered) == n, f"{len(delivered)} delivered for {n} sent (at the kills: {at_kill})\n{logs}"
    assert delivered == wire  # every event once, byte for byte, in order

    kiosk_seqs, audit_seqs = [], []
    chain_check = ChainTracker(strict_start=True)
    for raw in await _committed(settings, AUDIT.name):
        try:
            opened = open_envelope(raw, keyring)
        except EnvelopeRejected:
            continue  # another test's gateway-1 (its own keys) on the shared broker
        msg = opened.message
        assert isinstance(msg, AuditRecord)
        if msg.hospital_id != hospital:
            continue
        # The gateway's own audit chain: gap-free from seq 1, no seq reused across the kills.
        assert chain_check.check(opened.envelope, envelope_hash(opened.envelope)) is ChainVerdict.ACCEPT
        chain_check.accept(opened.envelope, envelope_hash(opened.envelope))
        kiosk_seqs.append(msg.seq)
        audit_seqs.append(opened.envelope.seq)
    assert kiosk_seqs == list(range(1, n + 1))
    assert audit_seqs == list(range(1, n + 1))
