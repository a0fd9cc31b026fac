"""The gateway under a hostile flood on the embedded broker. Prints one JSON line.

A real gateway process (``medkiosk gateway``) routes valid kiosk events offered at ``--rate``/s to a hospital
topic while a second process floods the same kiosk topic as fast as its producer can go with hostile records:
half garbage bytes, half well-formed envelopes with bad signatures (the costly kind: each needs an ECDSA
verify). Reported: valid-event kiosk->hospital latency p50/p99 without and with the flood, dead letters per
second during the flood, and the gateway's RSS before and after.

    .venv/bin/python benchmarks/flood.py [--rate 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import IdentityCheck, MedicalRecord
from streams import (
    AUDIT,
    DLQ,
    KIOSK_IDENTITY,
    KIOSK_INFERENCE,
    BusSettings,
    ChainState,
    Keyring,
    TopicSpec,
    apply_topics,
    export_role,
    hospital_topic,
    init_dev_keys,
    seal,
)
from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig

ROOT = Path(__file__).resolve().parents[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _flood(bootstrap: str, keys_dir: str, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    async def run() -> int:
        keyring = Keyring.load(Path(keys_dir))
        rng = random.Random(1)
        proto, _ = seal(
            IdentityCheck(kiosk_id="k1", hospital_id="H1"),
            signing_key=keyring.signing_key("k1"),
            chain=ChainState(),
            hospital_id="H1",
            data_key=keyring.latest_data_key("H1"),
            stream=KIOSK_IDENTITY.name,
        )
        forged = []
        for i in range(256):
            m = MedicalRecord()
            m.CopyFrom(proto)
            m.seq = 10_000 + i
            forged.append(m.SerializeToString())
        garbage = [rng.randbytes(rng.randrange(20, 400)) for _ in range(256)]
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=1 << 20, acks=1)
        await producer.start()
        sent = 0
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                futures = [
                    await producer.send(KIOSK_IDENTITY.name, (forged if i % 2 else garbage)[i % 256], key=b"k1")
                    for i in range(sent, sent + 2000)
                ]
                await asyncio.gather(*futures)
                sent += len(futures)
        finally:
            await producer.stop()
        return sent

    out.put(asyncio.run(run()))


async def _phase(
    settings: BusSettings, keyring: Keyring, chain: ChainState, rate: float, seconds: float
) -> tuple[list[float], ChainState]:
    """Offer valid events at ``rate``/s for ``seconds``; returns their kiosk->hospital latencies (ms)."""
    target = hospital_topic("H1")
    consumer = AIOKafkaConsumer(target, bootstrap_servers=settings.bootstrap_servers, auto_offset_reset="latest")
    await consumer.start()
    await consumer.getmany(timeout_ms=500)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=0)
    await producer.start()
    sealed_at: dict[int, int] = {}
    latencies: list[float] = []

    async def receive() -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            now = time.time_ns()
            for records in batch.values():
                for r in records:
                    seq = MedicalRecord.FromString(r.value).seq
                    if seq in sealed_at:
                        latencies.append((now - sealed_at.pop(seq)) / 1e6)

    rx = asyncio.create_task(receive())
    try:
        n = int(rate * seconds)
        t0 = time.monotonic()
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            rec, chain = seal(
                IdentityCheck(kiosk_id="k1", hospital_id="H1", skew_ns=i),
                signing_key=keyring.signing_key("k1"),
                chain=chain,
                hospital_id="H1",
                data_key=keyring.latest_data_key("H1"),
                stream=KIOSK_IDENTITY.name,
            )
            sealed_at[rec.seq] = rec.timestamp
            await producer.send(KIOSK_IDENTITY.name, rec.SerializeToString(), key=b"k1")
        deadline = time.monotonic() + 60
        while sealed_at and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    finally:
        rx.cancel()
        await producer.stop()
        await consumer.stop()
    return latencies, chain


async def _dlq_count(settings: BusSettings) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(DLQ.name) or set()
        from aiokafka import TopicPartition

        tps = [TopicPartition(DLQ.name, p) for p in parts]
        ends = await consumer.end_offsets(tps) if tps else {}
        return int(sum(ends.values()))
    finally:
        await consumer.stop()


async def main_async(args: argparse.Namespace, bootstrap: str, tmp: Path) -> dict[str, object]:
    keys = tmp / "keys"
    init_dev_keys(keys, hospitals=["H1"], kiosks={"k1": "H1"}, services=["gateway-1"])
    export_role(keys, tmp / "gw", producer_id="gateway-1")
    settings = BusSettings(bootstrap_servers=bootstrap, keys_dir=keys, state_dir=tmp / "state", topic_partitions=1)
    topics = [KIOSK_IDENTITY, KIOSK_INFERENCE, AUDIT, DLQ, TopicSpec(name=hospital_topic("H1"), key="k", content="h")]
    await apply_topics(settings, topics)
    keyring = Keyring.load(keys)
    env = {**os.environ, "MEDKIOSK_TOPIC_PARTITIONS": "1"}
    gw = subprocess.Popen(  # noqa: ASYNC220
        [
            sys.executable,
            "-m",
            "medkiosk",
            "gateway",
            "--bootstrap",
            bootstrap,
            "--keys-dir",
            str(tmp / "gw"),
            "--state-dir",
            str(tmp / "gw-state"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        chain = ChainState()
        # Warm-up: group join and first fetches.
        _, chain = await _phase(settings, keyring, chain, args.rate, 5)
        rss_before = _rss_mb(gw.pid)
        quiet, chain = await _phase(settings, keyring, chain, args.rate, args.seconds)
        dlq0 = await _dlq_count(settings)
        queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        flooder = mp.Process(target=_flood, args=(bootstrap, str(keys), args.seconds, queue))
        flooder.start()
        t0 = time.monotonic()
        flooded, chain = await _phase(settings, keyring, chain, args.rate, args.seconds)
        flooder.join()
        sent = queue.get()
        # Let the gateway finish the flood's backlog, then count what it dead-lettered.
        backlog_deadline = time.monotonic() + 120
        while time.monotonic() < backlog_deadline and await _dlq_count(settings) - dlq0 < sent:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        elapsed = time.monotonic() - t0
        dead = await _dlq_count(settings) - dlq0
        rss_after = _rss_mb(gw.pid)
    finally:
        gw.terminate()
        gw.wait(30)
    return {
        "benchmark": "flood",
        "engine": "tansu",
        "valid_rate_per_s": args.rate,
        "seconds": args.seconds,
        "quiet_p50_ms": round(statistics.median(quiet), 1),
        "quiet_p99_ms": round(_pct(quiet, 0.99), 1),
        "flood_p50_ms": round(statistics.median(flooded), 1),
        "flood_p99_ms": round(_pct(flooded, 0.99), 1),
        "valid_delivered": [len(quiet), len(flooded)],
        "hostile_sent": sent,
        "hostile_offered_per_s": round(sent / args.seconds),
        "dead_letters": dead,
        "dead_letters_per_s": round(dead / elapsed),
        "gateway_rss_mb_before": round(rss_before, 1),
        "gateway_rss_mb_after": round(rss_after, 1),
        "rss_growth_pct": round(100 * (rss_after - rss_before) / rss_before, 1),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=100.0, help="valid events per second")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, EmbeddedBroker(EmbeddedBrokerConfig(state_dir=Path(tmp) / "b")) as b:
        print(json.dumps(asyncio.run(main_async(args, b.bootstrap, Path(tmp)))))


if __name__ == "__main__":
    main()
