"""Where the demo's kiosk->hospital latency goes: runs ``medkiosk up`` on a broker of its own, then reads the log
back and splits each event's way by the timestamps the records carry. Prints one JSON line.

    .venv/bin/python benchmarks/e2e_split.py [--duration 20] [--kiosk-mode edge|simulated] [--engine tansu|kafka]

Stages (p50/p99 in ms), per kiosk event, matched across topics by (producer, seq):
  kiosk_outbox    seal (envelope timestamp) -> the kiosk's produce call (the record's CreateTime)
  gateway_in      kiosk record CreateTime -> the gateway has verified it (its audit record's ``observed_at``)
  gateway_out     verified -> the gateway's produce call of the forward (the hospital record's CreateTime)
  subscriber      the forward's CreateTime -> the subscriber wrote it (its ``e2e_ms`` minus the above)
  e2e             seal -> written by the subscriber (what ``medkiosk up`` reports)
CreateTime has millisecond resolution; the clocks are one machine's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from schemas import AuditRecord, MedicalRecord
from streams.broker import make_local_broker

ROOT = Path(__file__).resolve().parents[1]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * (len(ordered) - 1) + 0.5))], 1)


async def _read(bootstrap: str, topics: list[str]) -> list[tuple[str, int, bytes]]:
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None)
    await consumer.start()
    out: list[tuple[str, int, bytes]] = []
    quiet = 0
    try:
        while quiet < 5:
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            got = [(r.topic, r.timestamp, r.value or b"") for rs in batch.values() for r in rs]
            out.extend(got)
            quiet = 0 if got else quiet + 1
    finally:
        await consumer.stop()
    return out


def _routed(value: bytes) -> str:
    return AuditRecord.FromString(MedicalRecord.FromString(value).encrypted_data).routed_to


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=int, default=20)
    p.add_argument("--kiosk-mode", choices=["edge", "simulated"], default="edge")
    p.add_argument("--engine", choices=["tansu", "kafka"], default="tansu")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp, make_local_broker(args.engine, state_dir=Path(tmp) / "b") as b:
        state = Path(tmp) / "up"
        cmd = [sys.executable, "-m", "medkiosk", "up", "--bootstrap", b.bootstrap, "--duration", str(args.duration)]
        cmd += ["--kiosk-mode", args.kiosk_mode, "--state-dir", str(state), "--no-autoscaler"]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, env={**os.environ})
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        records = asyncio.run(_read(b.bootstrap, ["kiosk.identity.v1", "kiosk.inference.v1", "audit.v1"]))
        hospital_topics = sorted({a for t, _, v in records if t == "audit.v1" for a in [_routed(v)]})
        hospitals = asyncio.run(_read(b.bootstrap, hospital_topics))
        outputs = [json.loads(line) for f in sorted(state.glob("**/*.jsonl")) for line in f.read_text().splitlines()]
    sealed: dict[tuple[str, str, int], tuple[float, float]] = {}
    observed: dict[tuple[str, str, int], float] = {}
    for topic, create_ms, value in records:
        env = MedicalRecord.FromString(value)
        if topic == "audit.v1":
            a = AuditRecord.FromString(env.encrypted_data)
            observed[(a.producer_id, a.stream, a.seq)] = a.observed_at / 1e6
        else:
            sealed[(env.producer_id, env.stream, env.seq)] = (env.timestamp / 1e6, float(create_ms))
    forwarded: dict[tuple[str, str, int], float] = {}
    for _, create_ms, value in hospitals:
        env = MedicalRecord.FromString(value)
        forwarded.setdefault((env.producer_id, env.stream, env.seq), float(create_ms))
    written = {
        (o["producer_id"], o.get("stream", ""), int(o["seq"])): float(o["e2e_ms"]) for o in outputs if "e2e_ms" in o
    }
    stages: dict[str, list[float]] = {k: [] for k in ("kiosk_outbox", "gateway_in", "gateway_out", "subscriber", "e2e")}
    for key, (seal_ms, kiosk_create) in sealed.items():
        if key not in observed or key not in forwarded:
            continue
        stages["kiosk_outbox"].append(kiosk_create - seal_ms)
        stages["gateway_in"].append(observed[key] - kiosk_create)
        stages["gateway_out"].append(forwarded[key] - observed[key])
        if key in written:
            stages["subscriber"].append(written[key] - (forwarded[key] - seal_ms))
            stages["e2e"].append(written[key])
    print(
        json.dumps(
            {
                "benchmark": "e2e_split",
                "matched": [len(sealed), len(observed), len(forwarded), len(written)],
                "engine": args.engine,
                "kiosk_mode": args.kiosk_mode,
                "duration_s": args.duration,
                "events": len(stages["e2e"]),
                "summary": {k: summary.get(k) for k in ("published", "delivered", "lost", "e2e_p50_ms", "e2e_p99_ms")},
                **{f"{k}_p50_ms": _pct(v, 50) for k, v in stages.items()},
                **{f"{k}_p99_ms": _pct(v, 99) for k, v in stages.items()},
                "load_avg_1m": round(os.getloadavg()[0], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
