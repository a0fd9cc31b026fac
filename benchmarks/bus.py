"""Bus benchmark on the embedded broker: plain protobuf vs enveloped throughput, verifications per second
per core, and end-to-end latency at a fixed offered load. Prints one JSON line.

    .venv/bin/python benchmarks/bus.py [--engine tansu|kafka] [--events 20000] [--rate 1000] [--seconds 10]

A third run seals the same events with one batch signature per ``--batch`` envelopes (a Merkle root, each
envelope with its inclusion proof: docs/ENVELOPE.md section 3a), which a producer of many events at once can
use; a consumer verifies the batch's signature once and each envelope's proof.

``--engine kafka`` runs the same workload on Apache Kafka 4 (KRaft, one node); both report the broker's
start time (exec to ready; Kafka's first start also formats its log dir) and its resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from edge_agent.simulator import synthetic_identity_check
from schemas import IdentityCheck
from streams import (
    BatchItem,
    BusSettings,
    ChainState,
    ChainTracker,
    Keyring,
    TopicSpec,
    apply_topics,
    decode_payload,
    decrypt,
    envelope_hash,
    init_dev_keys,
    parse,
    seal,
    seal_batch,
    verify_signature,
)
from streams.broker import make_local_broker


def _messages(n: int) -> list[IdentityCheck]:
    rng = random.Random(0)
    now = time.time_ns()
    return [synthetic_identity_check(rng, "k1", "H1", now + i) for i in range(n)]


async def _produce(bootstrap: str, topic: str, values: list[bytes]) -> float:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    try:
        t0 = time.perf_counter()
        futures = [await producer.send(topic, v, key=b"k1") for v in values]
        await asyncio.gather(*futures)
        return time.perf_counter() - t0
    finally:
        await producer.stop()


async def _consume(bootstrap: str, topic: str, n: int, handle: object) -> float:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", max_partition_fetch_bytes=8 << 20
    )
    await consumer.start()
    try:
        seen = 0
        t0 = time.perf_counter()
        while seen < n:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for r in records:
                    handle(r.value)  # type: ignore[operator]
                seen += len(records)
        return time.perf_counter() - t0
    finally:
        await consumer.stop()


def _opener(keyring: Keyring):  # type: ignore[no-untyped-def]
    tracker = ChainTracker()

    def open_one(raw: bytes) -> None:
        rec = parse(raw)
        verify_signature(rec, keyring)
        digest = envelope_hash(rec)
        tracker.check(rec, digest)
        tracker.accept(rec, digest)
        decode_payload(rec, decrypt(rec, keyring))

    return open_one


def _seal_batched(msgs: list[IdentityCheck], keyring: Keyring, batch: int) -> list[bytes]:
    """The same envelopes with one batch signature (a Merkle root) per ``batch`` of them (ENVELOPE.md 3a)."""
    sk, dk = keyring.signing_key("k1"), keyring.latest_data_key("H1")
    chains: dict[str, ChainState] = {}
    out: list[bytes] = []
    for i in range(0, len(msgs), batch):
        items = [BatchItem(m, "", "H1", dk) for m in msgs[i : i + batch]]
        recs, chains = seal_batch(items, signing_key=sk, chains=chains)
        out.extend(r.SerializeToString() for r in recs)
    return out


def _seal_all(msgs: list[IdentityCheck], keyring: Keyring) -> list[bytes]:
    sk, dk = keyring.signing_key("k1"), keyring.latest_data_key("H1")
    state, out = ChainState(), []
    for m in msgs:
        rec, state = seal(m, signing_key=sk, chain=state, hospital_id="H1", data_key=dk)
        out.append(rec.SerializeToString())
    return out


async def _latency(bootstrap: str, topic: str, keyring: Keyring, rate: float, seconds: float) -> list[float]:
    """Offer ``rate`` events/s (seal + send) and measure seal-to-verified-and-decrypted latency."""
    sk, dk = keyring.signing_key("k1"), keyring.latest_data_key("H1")
    total = int(rate * seconds)
    lat: list[float] = []
    open_one = _opener(keyring)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="latest", fetch_max_wait_ms=5)
    await consumer.start()
    while not consumer.assignment():  # noqa: ASYNC110 - aiokafka offers no event for assignment
        await asyncio.sleep(0.01)
    await consumer.seek_to_end()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()

    async def consume() -> None:
        while len(lat) < total:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for r in records:
                    open_one(r.value)
                    lat.append((time.time_ns() - parse(r.value).timestamp) / 1e6)

    async def produce() -> None:
        state = ChainState()
        rng = random.Random(1)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i in range(total):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            msg = synthetic_identity_check(rng, "k1", "H1", time.time_ns())
            rec, state = seal(msg, signing_key=sk, chain=state, hospital_id="H1", data_key=dk)
            await producer.send(topic, rec.SerializeToString(), key=b"k1")

    try:
        await asyncio.wait_for(asyncio.gather(consume(), produce()), timeout=seconds * 4 + 30)
    finally:
        await producer.stop()
        await consumer.stop()
    return lat


def _rss_mib(pid: int | None, field: str = "VmRSS") -> float | None:
    """Resident memory of the broker process (Linux /proc), MiB."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 2)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--engine", choices=["tansu", "kafka"], default="tansu")
    ap.add_argument("--batch", type=int, default=256, help="envelopes per batch signature in the batch-signed run")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    init_dev_keys(tmp / "keys", hospitals=["H1"], kiosks={"k1": "H1"})
    keyring = Keyring.load(tmp / "keys")
    msgs = _messages(args.events)
    broker = make_local_broker(args.engine, state_dir=tmp / "broker")
    try:
        t0 = time.perf_counter()
        broker.start()
        start_s = time.perf_counter() - t0
        rss_ready = _rss_mib(broker.pid)
        t0 = time.perf_counter()
        broker.restart()
        restart_s = time.perf_counter() - t0
    except BaseException:
        broker.stop()
        raise
    with broker:
        settings = BusSettings(bootstrap_servers=broker.bootstrap)
        names = ("b.plain", "b.env", "b.batch", "b.lat")
        specs = [TopicSpec(name=n, key="k", content="bench", partitions=1) for n in names]
        await apply_topics(settings, specs)

        t0 = time.perf_counter()
        plain = [m.SerializeToString() for m in msgs]
        plain_encode = time.perf_counter() - t0
        plain_produce = await _produce(broker.bootstrap, "b.plain", plain)
        plain_consume = await _consume(broker.bootstrap, "b.plain", len(plain), IdentityCheck.FromString)
        plain_total = plain_encode + plain_produce + plain_consume

        t0 = time.perf_counter()
        sealed = _seal_all(msgs, keyring)
        env_seal = time.perf_counter() - t0
        env_produce = await _produce(broker.bootstrap, "b.env", sealed)
        env_consume = await _consume(broker.bootstrap, "b.env", len(sealed), _opener(keyring))
        env_total = env_seal + env_produce + env_consume

        open_one = _opener(keyring)
        t0 = time.process_time()
        for raw in sealed:
            open_one(raw)
        verify_cpu = time.process_time() - t0

        t0 = time.perf_counter()
        batched = _seal_batched(msgs, keyring, args.batch)
        batch_seal = time.perf_counter() - t0
        batch_produce = await _produce(broker.bootstrap, "b.batch", batched)
        batch_consume = await _consume(broker.bootstrap, "b.batch", len(batched), _opener(keyring))
        batch_total = batch_seal + batch_produce + batch_consume
        open_one = _opener(keyring)
        t0 = time.process_time()
        for raw in batched:
            open_one(raw)
        batch_verify_cpu = time.process_time() - t0

        lat = await _latency(broker.bootstrap, "b.lat", keyring, args.rate, args.seconds)
        rss_after = _rss_mib(broker.pid)
        rss_peak = _rss_mib(broker.pid, "VmHWM")

    n = args.events
    result = {
        "benchmark": "bus",
        "engine": args.engine,
        "broker_start_s": round(start_s, 2),
        "broker_restart_s": round(restart_s, 2),
        "broker_rss_ready_mib": rss_ready,
        "broker_rss_after_mib": rss_after,
        "broker_rss_peak_mib": rss_peak,
        "events": n,
        "payload_bytes": round(statistics.mean(len(p) for p in plain)),
        "envelope_bytes": round(statistics.mean(len(s) for s in sealed)),
        "plain_events_per_s": round(n / plain_total),
        "enveloped_events_per_s": round(n / env_total),
        "enveloped_over_plain": round(plain_total / env_total, 3),
        "seal_per_s": round(n / env_seal),
        "plain_consume_per_s": round(n / plain_consume),
        "enveloped_consume_per_s": round(n / env_consume),
        "verifications_per_s_per_core": round(n / verify_cpu),
        "verify_us": round(verify_cpu / n * 1e6, 1),
        "batch": args.batch,
        "batch_signed_events_per_s": round(n / batch_total),
        "batch_signed_over_plain": round(plain_total / batch_total, 3),
        "batch_seal_per_s": round(n / batch_seal),
        "batch_signed_consume_per_s": round(n / batch_consume),
        "batch_signed_open_us": round(batch_verify_cpu / n * 1e6, 1),
        "offered_rate": args.rate,
        "e2e_events": len(lat),
        "e2e_p50_ms": _pct(lat, 50),
        "e2e_p99_ms": _pct(lat, 99),
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
