"""The gateway under hostile input on the real broker: every reproduction of the hostile-input issue.

Each test gets its own hospitals (so its own ``hospital.<id>.events.v1``) and ``.<suffix>`` kiosk topics, which
the catalog governs exactly as the production names, so tests share the session broker without seeing each
other's records.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from google.protobuf.message import Message

from cloud_workers.gateway import Gateway, GatewayConfig
from schemas import AuditRecord, DeadLetter, IdentityCheck, MedicalRecord, RejectReason, Telemetry
from streams import (
    AUDIT,
    DLQ,
    KIOSK_IDENTITY,
    BusMetrics,
    BusSettings,
    ChainState,
    EnvelopeRejected,
    Keyring,
    TopicSpec,
    apply_topics,
    export_role,
    hospital_topic,
    init_dev_keys,
    open_envelope,
    seal,
)
from streams._envelope import P256_ORDER
from streams.broker import LocalBroker

pytestmark = [pytest.mark.broker]

R = RejectReason


@dataclass
class World:
    settings: BusSettings
    keys: Keyring
    gateway_keys: Keyring
    hospital: str
    topic: str
    root: Path

    def seal(
        self, seq_state: ChainState, msg: Message | None = None, *, ts: int | None = None, **kw: object
    ) -> tuple[MedicalRecord, ChainState]:
        return seal(
            msg or IdentityCheck(kiosk_id="kx", hospital_id=self.hospital, skew_ns=seq_state.seq),
            signing_key=self.keys.signing_key("kx"),
            chain=seq_state,
            hospital_id=self.hospital,
            data_key=kw.pop("data_key", self.keys.latest_data_key(self.hospital)),  # type: ignore[arg-type]
            timestamp_ns=ts,
            stream=str(kw.pop("stream", self.topic)),
        )

    def gateway(self, gateway_id: str = "gateway-1") -> Gateway:
        return Gateway(
            GatewayConfig(gateway_id=gateway_id, group_id=f"gw-{self.topic}", topics=[self.topic]),
            self.settings,
            self.gateway_keys,
            BusMetrics(gateway_id),
        )


@pytest.fixture
async def world(own_broker: LocalBroker, tmp_path: Path, settings: BusSettings) -> AsyncIterator[World]:
    hospital = f"HX{uuid.uuid4().hex[:6]}"
    root = tmp_path / "keys"
    init_dev_keys(root, hospitals=[hospital], kiosks={"kx": hospital}, services=["gateway-1"])
    export_role(root, tmp_path / "gw", producer_id="gateway-1")
    topic = f"{KIOSK_IDENTITY.name}.{uuid.uuid4().hex[:8]}"
    s = settings.model_copy(
        update={"max_record_bytes": 256 * 1024, "keys_dir": root, "bootstrap_servers": own_broker.bootstrap}
    )
    await apply_topics(
        s,
        [
            TopicSpec(name=topic, key="kiosk id", content="t", partitions=1),
            TopicSpec(name=hospital_topic(hospital), key="kiosk id", content="t", partitions=1),
            DLQ,
            AUDIT,
        ],
    )
    yield World(s, Keyring.load(root), Keyring.load(tmp_path / "gw"), hospital, topic, tmp_path)


async def _produce(settings: BusSettings, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, max_request_size=4 * 1024 * 1024)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=b"kx")
    finally:
        await producer.stop()


async def _read(settings: BusSettings, topic: str, want: int, *, timeout_s: float = 30.0) -> list[bytes]:
    """Every record of ``topic``, waiting until at least ``want`` arrived and then until the log is quiet."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[bytes] = []
    quiet = 0
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            got = [r.value or b"" for rs in batch.values() for r in rs]
            out.extend(got)
            quiet = 0 if got else quiet + 1
            if len(out) >= want and quiet >= 3:
                break
    finally:
        await consumer.stop()
    return out


async def _letters_until(w: World, want: int) -> list[DeadLetter]:
    for _ in range(60):
        found = [d for d in (DeadLetter.FromString(v) for v in await _read(w.settings, DLQ.name, 0, timeout_s=2)) if
                 d.source_topic == w.topic]  # fmt: skip
        if len(found) >= want:
            return found
        await asyncio.sleep(0.2)
    return found


async def _run_gateway(gw: Gateway, until: int) -> None:
    """Run ``gw`` until it has given ``until`` records an outcome, then stop it cleanly."""
    await gw.start()
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    c = gw.consumer
    for _ in range(600):
        if c.accepted + c.rejected + c.duplicates >= until:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await task
    await gw.stop()


def _seqs(w: World, values: list[bytes]) -> list[int]:
    return [open_envelope(v, w.keys).envelope.seq for v in values]


async def test_out_of_range_header_and_huge_records_are_dead_lettered_and_traffic_flows(world: World) -> None:
    """encryption=256 crashed every worker (struct.error); a huge record or producer_id made an oversized dead
    letter that was retried forever. Now: bounded dead letters with reasons, valid traffic delivered."""
    w = world
    chain = ChainState()
    valid = []
    for _ in range(3):
        rec, chain = w.seal(chain)
        valid.append(rec.SerializeToString())
    crash = MedicalRecord()
    crash.ParseFromString(valid[0])
    crash.encryption = 256  # type: ignore[assignment]
    crash.signature.v = 1
    huge = b"\x0a" + b"\xff" * 3 + b"\x7f" + bytes(600 * 1024)  # 600 KB of junk, above the 256 KiB test limit
    big_id = MedicalRecord()
    big_id.ParseFromString(valid[0])
    big_id.producer_id = "p" * (150 * 1024)
    wire = [valid[0], crash.SerializeToString(), valid[1], huge, big_id.SerializeToString(), valid[2]]
    await _produce(w.settings, w.topic, wire)

    gw = w.gateway()
    await _run_gateway(gw, len(wire))
    assert (gw.consumer.accepted, gw.consumer.rejected) == (3, 3)
    routed = await _read(w.settings, hospital_topic(w.hospital), 3)
    assert routed == valid  # the original bytes, in order, exactly once
    letters = await _letters_until(w, 3)
    assert [d.reason for d in letters] == [
        R.REJECT_REASON_MALFORMED,
        R.REJECT_REASON_TOO_LARGE,
        R.REJECT_REASON_TOO_LARGE,
    ]
    for letter, original in zip(letters, [wire[1], wire[3], wire[4]], strict=True):
        assert len(letter.SerializeToString()) < 70 * 1024
        assert letter.value_length == len(original)
        assert letter.value_sha256 == hashlib.sha256(original).digest()
        assert letter.truncated == (len(original) > 64 * 1024)
        assert letter.value == original[: 64 * 1024]
        assert len(letter.producer_id) <= 300

    # A restarted gateway resumes after the last record: nothing is processed twice.
    again = w.gateway()
    await again.start()
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop))
    await asyncio.sleep(1.5)
    stop.set()
    await task
    await again.stop()
    assert again.consumer.accepted + again.consumer.rejected + again.consumer.duplicates == 0


async def test_replay_while_down_is_refused_after_restart_and_genuine_traffic_flows(world: World) -> None:
    """Chain state lived in memory: an old envelope replayed while the gateway was down became the baseline and
    the kiosk's next 100 genuine events were seq_gap. Now the chain survives the restart: an old envelope is
    replayed_seq, a recent one (the last 64 per stream are remembered) a dropped duplicate, and genuine traffic
    flows on with no gap."""
    w = world
    chain = ChainState()
    recs = []
    for _ in range(100):
        rec, chain = w.seal(chain)
        recs.append(rec.SerializeToString())
    await _produce(w.settings, w.topic, recs[:80])
    await _run_gateway(w.gateway(), 80)

    await _produce(w.settings, w.topic, [recs[4], recs[78], *recs[80:]])  # seq 5 and 79 replayed, then 81..100
    gw = w.gateway()
    await _run_gateway(gw, 22)
    assert (gw.consumer.accepted, gw.consumer.rejected, gw.consumer.duplicates) == (20, 1, 1)
    letters = await _letters_until(w, 1)
    assert [(d.reason, d.seq) for d in letters] == [(R.REJECT_REASON_REPLAYED_SEQ, 5)]
    routed = await _read(w.settings, hospital_topic(w.hospital), 100)
    assert _seqs(w, routed) == list(range(1, 101))


async def test_kiosk_that_lost_its_state_is_a_counted_reset_not_a_lock_out(world: World) -> None:
    w = world
    chain = ChainState()
    old = []
    for _ in range(5):
        rec, chain = w.seal(chain)
        old.append(rec.SerializeToString())
    fresh, chain2 = [], ChainState()
    for _ in range(3):
        rec, chain2 = w.seal(chain2)  # later timestamps: a kiosk that restarted with an empty outbox
        fresh.append(rec.SerializeToString())
    await _produce(w.settings, w.topic, [*old, *fresh, old[0]])  # and an old seq 1 replayed after the reset
    gw = w.gateway()
    await _run_gateway(gw, 9)
    assert (gw.consumer.accepted, gw.consumer.rejected, gw.consumer.resets) == (8, 1, 1)
    assert gw.consumer._metrics.value("medkiosk_chain_resets_total", topic=w.topic, producer="kx") == 1
    letters = await _letters_until(w, 1)
    assert [d.reason for d in letters] == [R.REJECT_REASON_REPLAYED_SEQ]
    audit_log = await _read(w.settings, AUDIT.name, 1)
    mine = []
    for raw in audit_log:
        try:
            msg = open_envelope(raw, w.keys).message
        except EnvelopeRejected:
            continue  # another test's gateway-1 (its own keys) shares the audit topic
        assert isinstance(msg, AuditRecord)
        if msg.source_topic == w.topic:
            mine.append((msg.seq, msg.chain_reset))
    assert mine == [(1, False), (2, False), (3, False), (4, False), (5, False), (1, True), (2, False), (3, False)]


async def test_plaintext_wrong_schema_wrong_stream_high_s_and_wrong_role_are_refused(world: World) -> None:
    w = world
    chain = ChainState()
    plain, _ = w.seal(chain, data_key=None)  # a kiosk-signed IdentityCheck in the clear
    telemetry, _ = w.seal(chain, Telemetry(kiosk_id="kx"))
    elsewhere, _ = w.seal(chain, stream="kiosk.inference.v1")
    good, _ = w.seal(chain)
    malleable = MedicalRecord()
    malleable.CopyFrom(good)
    s = int.from_bytes(good.signature.s, "big")
    malleable.signature.s = (P256_ORDER - s).to_bytes(32, "big")  # verifies mathematically, other hash
    posing, _ = seal(  # a cloud service's key speaking on a kiosk topic
        IdentityCheck(kiosk_id="kx", hospital_id=w.hospital),
        signing_key=w.keys.signing_key("gateway-1"),
        chain=ChainState(),
        hospital_id=w.hospital,
        data_key=w.keys.latest_data_key(w.hospital),
        stream=w.topic,
    )
    wire = [x.SerializeToString() for x in (plain, telemetry, elsewhere, malleable, posing, good)]
    await _produce(w.settings, w.topic, wire)
    gw = w.gateway()
    await _run_gateway(gw, len(wire))
    letters = await _letters_until(w, 5)
    assert [d.reason for d in letters] == [
        R.REJECT_REASON_PLAINTEXT_REFUSED,
        R.REJECT_REASON_WRONG_SCHEMA,
        R.REJECT_REASON_WRONG_STREAM,
        R.REJECT_REASON_BAD_SIGNATURE,
        R.REJECT_REASON_UNAUTHORIZED,
    ]
    assert await _read(w.settings, hospital_topic(w.hospital), 1) == [wire[-1]]


async def test_hostile_mix_every_record_one_outcome_valid_delivered_once(world: World) -> None:
    """A seeded mix of 200 hostile records around 50 valid ones: outcomes add up, the DLQ holds exactly the
    rejects, and each valid event reaches the hospital exactly once, in order."""
    w = world
    rng = random.Random(7)
    chain = ChainState()
    valid = []
    for _ in range(50):
        rec, chain = w.seal(chain)
        valid.append(rec.SerializeToString())
    wire: list[bytes] = []
    hostile = 0
    for v in valid:
        for _ in range(4):
            base = bytearray(rng.choice(valid))
            kind = rng.randrange(4)
            if kind == 0:
                base[rng.randrange(len(base))] ^= 1 << rng.randrange(8)
            elif kind == 1:
                base = base[: rng.randrange(len(base))]
            elif kind == 2:
                base = bytearray(rng.randbytes(rng.randrange(1, 300)))
            else:
                m = MedicalRecord()
                m.ParseFromString(bytes(base))
                m.seq = rng.choice([0, 2**63, 2**64 - 1, m.seq + 1000])
                base = bytearray(m.SerializeToString())
            if bytes(base) not in valid:
                wire.append(bytes(base))
                hostile += 1
        wire.append(v)
    await _produce(w.settings, w.topic, wire)
    gw = w.gateway()
    await _run_gateway(gw, len(wire))
    c = gw.consumer
    assert c.accepted + c.rejected + c.duplicates == len(wire)
    assert c.accepted == 50 and c.rejected == hostile - c.duplicates
    routed = await _read(w.settings, hospital_topic(w.hospital), 50)
    assert routed == valid
    letters = await _letters_until(w, c.rejected)
    assert len(letters) == c.rejected
    assert R.REJECT_REASON_INTERNAL_ERROR not in {d.reason for d in letters}
