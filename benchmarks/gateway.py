"""Gateway cost per event on the embedded broker (or Apache Kafka). Prints one JSON line.

Preloads N sealed envelopes from K kiosks into ``kiosk.identity.v1``, starts one real gateway process
(``medkiosk gateway``, optionally under cProfile), and times the drain until every event is on its hospital
topic: wall rate, events per gateway CPU-second (the process's own user+system time from /proc), and
preload->hospital latency p50/p99 (seal time to arrival). With ``--profile`` the gateway runs under cProfile
and the top functions by cumulative time are included.

    .venv/bin/python benchmarks/gateway.py [--events 20000] [--kiosks 20] [--engine tansu|kafka] [--profile]
        [--gateways N] [--partitions P] [--sign-each] [--transactional]

After the drain it checks the guarantees from the outputs alone: every routed envelope verifies and chains on at
its hospital, every audit record verifies (batch proofs included), and the audit log names each input once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from schemas import AuditRecord, CardRead, IdentityCheck, IdentityVerdict, MedicalRecord
from streams import (
    BusSettings,
    ChainState,
    ChainTracker,
    Keyring,
    RecordPipeline,
    export_role,
    hospital_topic,
    init_dev_keys,
    seal,
    topics_for,
)
from streams._pipeline import Accepted, Duplicate, Rejected
from streams.broker import make_local_broker

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def _preload(settings: BusSettings, keys: Keyring, hospitals: list[str], kiosks: int, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5, max_batch_size=1 << 20)
    await producer.start()
    chains = {f"k{i}": ChainState() for i in range(kiosks)}
    try:
        for i in range(n):
            kiosk = f"k{i % kiosks}"
            hospital = hospitals[(i % kiosks) % len(hospitals)]
            msg = IdentityCheck(
                kiosk_id=kiosk,
                hospital_id=hospital,
                card=CardRead(kiosk_id=kiosk, card_number=f"{i:010d}", read_at=time.time_ns(), frame_format="em4100"),
                verdict=IdentityVerdict.IDENTITY_VERDICT_VERIFIED,
                skew_ns=1000,
                window_ns=50_000_000,
            )
            rec, chains[kiosk] = seal(
                msg,
                signing_key=keys.signing_key(kiosk),
                chain=chains[kiosk],
                hospital_id=hospital,
                data_key=keys.latest_data_key(hospital),
                stream="kiosk.identity.v1",
            )
            await producer.send("kiosk.identity.v1", rec.SerializeToString(), key=kiosk.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def _drain(settings: BusSettings, hospitals: list[str], n: int, gw_pids: list[int]) -> dict[str, object]:
    consumer = AIOKafkaConsumer(
        *(hospital_topic(h) for h in hospitals),
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    latencies: list[float] = []
    first = None
    cpu0 = sum(_cpu_s(p) for p in gw_pids)
    t0 = time.monotonic()
    try:
        while len(latencies) < n and time.monotonic() - t0 < 600:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            now = time.time_ns()
            for records in batch.values():
                for r in records:
                    if first is None:
                        first = time.monotonic()
                        cpu0 = sum(_cpu_s(p) for p in gw_pids)
                    latencies.append((now - MedicalRecord.FromString(r.value).timestamp) / 1e6)
        wall = time.monotonic() - (first or t0)
        cpu = sum(_cpu_s(p) for p in gw_pids) - cpu0
    finally:
        await consumer.stop()
    lat = sorted(latencies)
    return {
        "delivered": len(latencies),
        "drain_wall_s": round(wall, 2),
        "wall_rate_per_s": round(len(latencies) / wall),
        "gateway_cpu_s": round(cpu, 2),
        "events_per_gateway_cpu_s": round(len(latencies) / cpu) if cpu else 0,
        "preload_to_hospital_p50_ms": round(statistics.median(lat), 1) if lat else 0.0,
        "preload_to_hospital_p99_ms": round(lat[int(0.99 * (len(lat) - 1))], 1) if lat else 0.0,
    }


async def _read_topics(settings: BusSettings, topics: list[str]) -> list[tuple[str, int, bytes]]:
    """Everything on ``topics``, read until the log is quiet for a second."""
    consumer = AIOKafkaConsumer(
        *topics,
        bootstrap_servers=settings.bootstrap_servers,
        auto_offset_reset="earliest",
        group_id=None,
        max_partition_fetch_bytes=8 << 20,
    )
    await consumer.start()
    out: list[tuple[str, int, bytes]] = []
    quiet = 0
    try:
        while quiet < 5:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            got = [(r.topic, r.partition, r.value or b"") for rs in batch.values() for r in rs]
            out.extend(got)
            quiet = 0 if got else quiet + 1
    finally:
        await consumer.stop()
    return out


async def _check_outputs(settings: BusSettings, keys: Keyring, hospitals: list[str], n: int) -> dict[str, object]:
    """The guarantees, after the run: every kiosk chain whole at its hospital, every audit chain verifying, and
    the audit log naming every input record exactly once."""
    routed = await _read_topics(settings, [hospital_topic(h) for h in hospitals])
    subscriber = RecordPipeline(keys, ChainTracker())
    outcomes = [subscriber.open(t, p, v) for t, p, v in routed]
    audits = await _read_topics(settings, ["audit.v1"])
    rereads = 0
    while len(audits) < n and rereads < 3:  # a short read is read again before it counts as missing
        rereads += 1
        await asyncio.sleep(2)
        audits = await _read_topics(settings, ["audit.v1"])
    auditor = RecordPipeline(keys, ChainTracker(), decrypt=True)
    covered: set[tuple[int, int]] = set()
    audit_rejects = 0
    for t, p, v in audits:
        outcome = auditor.open(t, p, v)
        if isinstance(outcome, Rejected):
            audit_rejects += 1
        elif isinstance(outcome, Accepted) and isinstance(outcome.message, AuditRecord):
            covered.add((outcome.message.source_partition, outcome.message.source_offset))
    return {
        "check_routed_accepted": sum(isinstance(o, Accepted) for o in outcomes),
        "check_routed_duplicates": sum(isinstance(o, Duplicate) for o in outcomes),
        "check_routed_rejected": sum(isinstance(o, Rejected) for o in outcomes),
        "check_audit_records": len(audits),
        "check_audit_rereads": rereads,
        "check_audit_rejected": audit_rejects,
        "check_inputs_audited": len(covered),
        "guarantees_ok": sum(isinstance(o, Accepted) for o in outcomes) == n
        and not any(isinstance(o, Rejected) for o in outcomes)
        and audit_rejects == 0
        and len(covered) == n,
    }


def _profile_top(path: Path, limit: int = 25) -> list[str]:
    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, func), (_cc, _nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if func.startswith("<method 'poll'"):
            continue  # waiting for the network, not work
        rows.append((tt, ct, f"{Path(file).name}:{line}:{func}"))
    rows.sort(reverse=True)
    return [f"{name} self {tt:.2f}s cum {ct:.2f}s" for tt, ct, name in rows[:limit]]


async def main_async(args: argparse.Namespace, bootstrap: str, tmp: Path) -> dict[str, object]:
    hospitals = ["H1", "H2"]
    keys_dir = tmp / "keys"
    gateway_ids = [f"gateway-{i + 1}" for i in range(args.gateways)]
    init_dev_keys(
        keys_dir,
        hospitals=hospitals,
        kiosks={f"k{i}": hospitals[i % 2] for i in range(args.kiosks)},
        services=gateway_ids,
    )
    for gid in gateway_ids:
        export_role(keys_dir, tmp / gid, producer_id=gid)
    settings = BusSettings(bootstrap_servers=bootstrap, keys_dir=keys_dir, topic_partitions=args.partitions)
    from streams import apply_topics

    await apply_topics(settings, topics_for(hospitals))
    t0 = time.monotonic()
    await _preload(settings, Keyring.load(keys_dir), hospitals, args.kiosks, args.events)
    preload_s = time.monotonic() - t0
    prof = tmp / "gateway.prof"
    env = {**os.environ, "MEDKIOSK_LOG_LEVEL": "ERROR"}
    if args.engine == "kafka":
        env["MEDKIOSK_ENABLE_IDEMPOTENCE"] = "true"
    procs: list[subprocess.Popen[bytes]] = []
    for gid in gateway_ids:
        cmd = [sys.executable]
        if args.profile and gid == "gateway-1":
            cmd += ["-m", "cProfile", "-o", str(prof)]
        cmd += ["-m", "medkiosk", "gateway", "--gateway-id", gid, "--bootstrap", bootstrap]
        cmd += ["--keys-dir", str(tmp / gid), "--state-dir", str(tmp / "state")]
        if args.transactional:
            cmd.append("--transactional")
        if args.sign_each:
            cmd.append("--sign-each")
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # noqa: ASYNC220
    try:
        result = await _drain(settings, hospitals, args.events, [p.pid for p in procs])
    finally:
        for gw in procs:
            gw.send_signal(signal.SIGINT)
        for gw in procs:
            try:
                gw.wait(60)
            except subprocess.TimeoutExpired:
                gw.kill()
    result.update(await _check_outputs(settings, Keyring.load(keys_dir), hospitals, args.events))
    # What a gateway had not sent when it exited (its drain time was up): durable, sent on its next start.
    left = 0
    for gid in gateway_ids:
        db = tmp / "state" / gid / "outbox.db"
        if db.exists():
            with sqlite3.connect(db) as conn:
                left += conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    result["gateway_outbox_left"] = left
    result["gateway_exit_codes"] = [gw.returncode for gw in procs]
    out: dict[str, object] = {
        "benchmark": "gateway",
        "engine": args.engine,
        "transactional": args.transactional,
        "audit_signing": "each" if args.sign_each else "batch",
        "gateways": args.gateways,
        "events": args.events,
        "kiosks": args.kiosks,
        "partitions": args.partitions,
        "preload_s": round(preload_s, 1),
        **result,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }
    if args.profile and prof.exists():
        out["profile_top_self"] = _profile_top(prof)
        if args.keep_profile:
            args.keep_profile.write_bytes(prof.read_bytes())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=20_000)
    p.add_argument("--kiosks", type=int, default=20)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--engine", choices=["tansu", "kafka"], default="tansu")
    p.add_argument("--transactional", action="store_true", help="the gateway's Kafka-transaction mode (kafka only)")
    p.add_argument("--gateways", type=int, default=1, help="gateway processes in one consumer group")
    p.add_argument("--sign-each", action="store_true", help="one ECDSA signature per audit record (not per batch)")
    p.add_argument("--profile", action="store_true", help="run the gateway under cProfile and report its top items")
    p.add_argument("--keep-profile", type=Path, help="copy the cProfile output here")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, make_local_broker(args.engine, state_dir=Path(tmp) / "b") as b:
        print(json.dumps(asyncio.run(main_async(args, b.bootstrap, Path(tmp)))))


if __name__ == "__main__":
    main()
