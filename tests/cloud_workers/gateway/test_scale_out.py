"""Two gateways in one group, each on its share of the kiosk partitions: every envelope is routed, every kiosk
chain arrives whole at its hospital, and each gateway's batch-signed audit chain verifies and covers exactly the
input records it owned. (Throughput is measured by ``benchmarks/gateway.py --gateways 2``, not asserted here.)"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from cloud_workers.gateway import Gateway, GatewayConfig
from schemas import AuditRecord, IdentityCheck, MedicalRecord
from streams import (
    AUDIT,
    DLQ,
    KIOSK_IDENTITY,
    BusMetrics,
    BusSettings,
    ChainState,
    ChainTracker,
    Keyring,
    RecordPipeline,
    TopicSpec,
    apply_topics,
    export_role,
    hospital_topic,
    init_dev_keys,
    seal,
)
from streams._pipeline import Accepted, Duplicate
from streams.broker import LocalBroker

pytestmark = [pytest.mark.broker]

KIOSKS = [f"ks{i}" for i in range(10)]
PER_KIOSK = 30


async def _read_all(settings: BusSettings, topics: list[str], want: int) -> list[tuple[str, int, int, bytes]]:
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    out: list[tuple[str, int, int, bytes]] = []
    quiet = 0
    try:
        for _ in range(300):
            batch = await consumer.getmany(timeout_ms=200)
            got = [(r.topic, r.partition, r.offset, r.value or b"") for rs in batch.values() for r in rs]
            out.extend(got)
            quiet = 0 if got else quiet + 1
            if len(out) >= want and quiet >= 3:
                break
    finally:
        await consumer.stop()
    return out


async def test_two_gateways_split_the_partitions_and_keep_every_guarantee(
    own_broker: LocalBroker, tmp_path: Path, settings: BusSettings
) -> None:
    hospital = f"HS{uuid.uuid4().hex[:6]}"
    root = tmp_path / "keys"
    init_dev_keys(
        root, hospitals=[hospital], kiosks=dict.fromkeys(KIOSKS, hospital), services=["gateway-1", "gateway-2"]
    )
    topic = f"{KIOSK_IDENTITY.name}.{uuid.uuid4().hex[:8]}"
    audit = AUDIT.name  # this module's broker is its own: only these two gateways write it
    s = settings.model_copy(update={"keys_dir": root, "bootstrap_servers": own_broker.bootstrap})
    await apply_topics(
        s,
        [
            TopicSpec(name=topic, key="kiosk id", content="t", partitions=2),
            TopicSpec(name=hospital_topic(hospital), key="kiosk id", content="t", partitions=2),
            TopicSpec(name=audit, key="gateway id", content="t", partitions=1),
            DLQ,
        ],
    )
    keys = Keyring.load(root)
    gateways = []
    for gid in ("gateway-1", "gateway-2"):
        export_role(root, tmp_path / gid, producer_id=gid)
        gw = Gateway(
            GatewayConfig(gateway_id=gid, group_id=f"gw-{topic}", topics=[topic]),
            s.model_copy(update={"state_dir": tmp_path / "state"}),
            Keyring.load(tmp_path / gid),
            BusMetrics(gid),
        )
        gateways.append(gw)
    for gw in gateways:
        await gw.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(gw.run(stop)) for gw in gateways]
    for _ in range(600):  # both in the group, one partition each, before any traffic
        if all(gw.consumer.assigned.is_set() and len(gw.consumer.assignment()) == 1 for gw in gateways):
            break
        await asyncio.sleep(0.05)
    assert all(len(gw.consumer.assignment()) == 1 for gw in gateways)

    producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap_servers, linger_ms=5)
    await producer.start()
    sent: dict[bytes, bytes] = {}
    chains = {k: ChainState() for k in KIOSKS}
    try:
        for i in range(PER_KIOSK):
            for kiosk in KIOSKS:
                rec, chains[kiosk] = seal(
                    IdentityCheck(kiosk_id=kiosk, hospital_id=hospital, skew_ns=i),
                    signing_key=keys.signing_key(kiosk),
                    chain=chains[kiosk],
                    hospital_id=hospital,
                    data_key=keys.latest_data_key(hospital),
                    stream=topic,
                )
                raw = rec.SerializeToString()
                sent[raw] = kiosk.encode()
                await producer.send(topic, raw, key=kiosk.encode())
        await producer.flush()
    finally:
        await producer.stop()
    total = len(sent)
    for _ in range(600):
        if sum(gw.consumer.accepted for gw in gateways) >= total:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*tasks)
    for gw in gateways:
        await gw.stop()

    # Each gateway routed its own partition's kiosks, and together all of them, exactly once.
    assert all(gw.consumer.accepted > 0 for gw in gateways)
    assert sum(gw.consumer.accepted for gw in gateways) == total
    assert sum(gw.consumer.rejected for gw in gateways) == 0
    routed = await _read_all(s, [hospital_topic(hospital)], total)
    assert sorted(v for *_, v in routed) == sorted(sent)
    subscriber = RecordPipeline(keys, ChainTracker())
    assert all(isinstance(subscriber.open(t, p, v), Accepted) for t, p, _, v in routed)

    # Two audit chains, both whole (every record verifies with its batch proof and chains on), which together
    # name every input record once, each by the gateway that owned its partition.
    records = await _read_all(s, [audit], total)
    auditor = RecordPipeline(keys, ChainTracker())
    owners: dict[tuple[int, int], str] = {}
    for t, p, _, v in records:
        outcome = auditor.open(t, p, v)
        assert isinstance(outcome, Accepted | Duplicate), outcome
        env = MedicalRecord.FromString(v)
        assert env.HasField("batch")
        entry = AuditRecord.FromString(env.encrypted_data)
        owners.setdefault((entry.source_partition, entry.source_offset), env.producer_id)
    assert len(owners) == total
    by_gateway = {gid: {p for (p, _), o in owners.items() if o == gid} for gid in ("gateway-1", "gateway-2")}
    assert all(len(parts) == 1 for parts in by_gateway.values())
    assert by_gateway["gateway-1"] != by_gateway["gateway-2"]
