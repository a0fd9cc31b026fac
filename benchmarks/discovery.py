"""Registry benchmark: how fast each backend takes heartbeats, how long a fresh reader needs to list the
fleet, how soon a watcher sees a new instance, and how soon silence turns into "unhealthy" (TTL 2 s).
Kafka-native on the embedded broker and etcd (Debian's etcd-server) on loopback. Prints one JSON line.

    .venv/bin/python benchmarks/discovery.py [--instances 200] [--changes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from streams import DLQ, BusSettings, Keyring, TopicSpec, apply_topics, init_dev_keys
from streams.broker import EmbeddedBroker, EmbeddedBrokerConfig
from streams.discovery import Check, EtcdRegistry, EtcdServer, EtcdServerConfig, KafkaRegistry, RegistryBase

TTL = Check(ttl_s=2.0)


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1000, 1)


async def _measure(writers: dict[str, RegistryBase], make_reader: Any, changes: int) -> dict[str, Any]:
    ids = sorted(writers)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            w.register(service="kiosk", instance_id=i, address="127.0.0.1", port=1, check=TTL)
            for i, w in writers.items()
        )
    )
    register_s = time.perf_counter() - start
    last_beat = time.perf_counter()
    reader = make_reader()
    await reader.start()
    try:
        start = time.perf_counter()
        listed = await reader.instances("kiosk")
        cold_list_s = time.perf_counter() - start
        assert len(listed) == len(ids), (len(listed), len(ids))
        # Silence: nobody beats again; how long after the last heartbeat until every instance reads unhealthy.
        while any(i.healthy for i in await reader.instances("kiosk")):  # noqa: ASYNC110 - polling is the measurement
            await asyncio.sleep(0.02)
        silence_s = time.perf_counter() - last_beat
        latencies: list[float] = []
        for n in range(changes):
            iid = ids[n % len(ids)]
            stream = reader.watch("bench-watch")
            await anext(stream)  # the current state
            t0 = time.perf_counter()
            await writers[iid].register(service="bench-watch", instance_id=iid, address="127.0.0.1", port=1, check=TTL)
            while not any(i.instance_id == iid and i.healthy for i in await anext(stream)):
                pass
            latencies.append(time.perf_counter() - t0)
            await stream.aclose()  # type: ignore[attr-defined]
            await writers[iid].deregister("bench-watch", iid)
    finally:
        await reader.stop()
    return {
        "heartbeats_per_s": round(len(ids) / register_s, 1),
        "cold_list_ms": round(cold_list_s * 1000, 1),
        "watch_ms_p50": _pct(latencies, 50),
        "watch_ms_p99": _pct(latencies, 99),
        "all_unhealthy_after_last_beat_s": round(silence_s, 2),
    }


async def _kafka(settings: BusSettings, keyring: Keyring, ids: list[str], changes: int) -> dict[str, Any]:
    await apply_topics(settings, [TopicSpec(name="registry.v1", key="s/i", content="bench", cleanup="compact"), DLQ])
    writers: dict[str, RegistryBase] = {i: KafkaRegistry(settings, keyring, producer_id=i) for i in ids}
    try:
        return await _measure(writers, lambda: KafkaRegistry(settings, keyring), changes)
    finally:
        for w in writers.values():
            await w.stop()


async def _etcd(url: str, ids: list[str], changes: int) -> dict[str, Any]:
    writer = EtcdRegistry(url)
    try:
        return await _measure(dict.fromkeys(ids, writer), lambda: EtcdRegistry(url), changes)
    finally:
        await writer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--changes", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = [f"kiosk-{n:04d}" for n in range(args.instances)]
        init_dev_keys(root / "keys", hospitals=["H1"], kiosks=dict.fromkeys(ids, "H1"), services=[])
        keyring = Keyring.load(root / "keys")
        out: dict[str, Any] = {"bench": "discovery", "instances": args.instances, "ttl_s": TTL.ttl_s}
        with EmbeddedBroker(EmbeddedBrokerConfig(state_dir=root / "broker")) as broker:
            settings = BusSettings(bootstrap_servers=broker.bootstrap, keys_dir=root / "keys", state_dir=root / "s")
            out["kafka"] = asyncio.run(_kafka(settings, keyring, ids, args.changes))
        with EtcdServer(EtcdServerConfig(data_dir=root / "etcd")) as etcd:
            out["etcd"] = asyncio.run(_etcd(etcd.url, ids, args.changes))
        out["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
