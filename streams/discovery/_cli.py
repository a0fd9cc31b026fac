"""``medkiosk discover list|watch|serve|register``: the fleet with its health, live; the Prometheus SD endpoint.

Registration of the parsers imports nothing but argparse; each handler imports what it needs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["add_discover_commands"]


def _registry_settings(args: argparse.Namespace) -> Any:
    from streams.discovery._settings import RegistrySettings

    update: dict[str, Any] = {}
    for field in ("backend", "etcd_url", "topic", "ttl_s"):
        if getattr(args, field, None) is not None:
            update[field] = getattr(args, field)
    if getattr(args, "consul", None):
        host, _, port = args.consul.rpartition(":")
        update.update(consul_host=host, consul_port=int(port))
    return RegistrySettings(**update)


def _open(args: argparse.Namespace, producer_id: str | None = None) -> Any:
    from streams._keys import Keyring
    from streams._settings import BusSettings
    from streams.discovery._settings import open_registry

    settings = _registry_settings(args)
    bus = BusSettings()
    if args.bootstrap:
        bus = bus.model_copy(update={"bootstrap_servers": args.bootstrap})
    if args.keys_dir:
        bus = bus.model_copy(update={"keys_dir": args.keys_dir})
    keyring = Keyring.load(bus.keys_dir) if settings.backend == "kafka" else None
    return open_registry(settings, bus=bus, keyring=keyring, producer_id=producer_id), bus


def _print_table(instances: list[Any]) -> None:
    print(f"{'SERVICE':<16} {'INSTANCE':<20} {'ENDPOINT':<22} {'HEALTH':<10} META")
    for i in instances:
        meta = " ".join(f"{k}={v}" for k, v in sorted(i.meta.items()))
        print(
            f"{i.service:<16} {i.instance_id:<20} {i.endpoint:<22} {'healthy' if i.healthy else 'UNHEALTHY':<10} {meta}"
        )


def _list(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    async def main() -> list[Any]:
        registry, _ = _open(args)
        await registry.start()
        try:
            found: list[Any] = await registry.instances(args.service)
            return found
        finally:
            await registry.stop()

    from aiokafka.errors import KafkaError

    try:
        instances = asyncio.run(main())
    except (KafkaError, OSError, LookupError) as exc:
        print(f"discover list: the registry cannot be read: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for i in instances:
            print(json.dumps(i.to_json()))
    else:
        _print_table(instances)
    return 0


def _watch(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import time

    from streams import run_until_stopped

    async def main(stop: asyncio.Event) -> None:
        registry, _ = _open(args)
        await registry.start()
        seen = 0
        try:
            async for snapshot in registry.watch(args.service):
                print(
                    json.dumps({"at": round(time.time(), 3), "instances": [i.to_json() for i in snapshot]}), flush=True
                )
                seen += 1
                if stop.is_set() or (args.count and seen >= args.count):
                    break
        finally:
            await registry.stop()

    asyncio.run(run_until_stopped(main))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from streams import configure_logging, run_until_stopped
    from streams.discovery._sd import SdServer

    configure_logging()
    host, _, port = args.listen.rpartition(":")

    async def main(stop: asyncio.Event) -> None:
        registry, bus = _open(args)
        await registry.start()
        brokers = [b.strip() for b in bus.bootstrap_servers.split(",") if b.strip()] if args.probe_brokers else []
        server = SdServer(registry, host=host or "127.0.0.1", port=int(port), brokers=brokers)
        await server.start()
        print(json.dumps({"sd_url": server.url, "metrics": f"http://{server.address}/metrics"}), flush=True)
        if args.ready_file:
            args.ready_file.write_text(json.dumps({"sd_url": server.url, "address": server.address}))
        try:
            await stop.wait()
        finally:
            await server.stop()
            await registry.stop()

    asyncio.run(run_until_stopped(main))
    return 0


def _register(args: argparse.Namespace) -> int:
    import asyncio

    from streams import run_until_stopped
    from streams.discovery._heartbeat import Heartbeat
    from streams.discovery._model import Check

    meta = dict(kv.split("=", 1) for kv in args.meta or [])
    host, _, port = args.endpoint.rpartition(":")

    async def main(stop: asyncio.Event) -> None:
        registry, _ = _open(args, producer_id=args.instance)
        await registry.start()
        check = Check(ttl_s=args.ttl_s or 10.0, tcp=args.endpoint if args.tcp_check else None)
        beat = Heartbeat(
            registry,
            service=args.service,
            instance_id=args.instance,
            address=host,
            port=int(port),
            meta=meta,
            check=check,
        )
        try:
            async with beat:
                await stop.wait()
        finally:
            await registry.stop()

    asyncio.run(run_until_stopped(main))
    return 0


def _backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["kafka", "etcd", "consul"],
        help="registry backend (default: MEDKIOSK_REGISTRY_BACKEND or kafka)",
    )
    parser.add_argument("--etcd-url", help="etcd client URL (default: MEDKIOSK_REGISTRY_ETCD_URL)")
    parser.add_argument("--consul", metavar="HOST:PORT", help="Consul agent (default: MEDKIOSK_REGISTRY_CONSUL_*)")
    parser.add_argument("--topic", help="registry topic of the kafka backend (default registry.v1)")
    parser.add_argument("--bootstrap", help="bootstrap servers (kafka backend; default: MEDKIOSK_BOOTSTRAP_SERVERS)")
    parser.add_argument("--keys-dir", type=Path, help="keys directory (kafka backend: public keys to verify with)")


def add_discover_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    disc = sub.add_parser("discover", help="service discovery: list and watch the fleet, serve Prometheus SD")
    dsub = disc.add_subparsers(dest="discover_command", required=True)
    ls = dsub.add_parser("list", help="every registered instance with its health", description="One line per instance.")
    ls.add_argument("--service", help="only this service (kiosk, cloud-gateway, ...)")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    _backend_arguments(ls)
    ls.set_defaults(func=_list)
    watch = dsub.add_parser(
        "watch", help="print the fleet again whenever an instance comes, goes or changes health (JSON lines)"
    )
    watch.add_argument("--service")
    watch.add_argument("--count", type=int, default=0, help="stop after this many snapshots (0: run until stopped)")
    _backend_arguments(watch)
    watch.set_defaults(func=_watch)
    serve = dsub.add_parser(
        "serve",
        help="serve the registry as a Prometheus HTTP SD endpoint (/sd), with /instances and /metrics",
        description="Prometheus: http_sd_configs: [{url: http://HOST:PORT/sd}]. /metrics has "
        "medkiosk_registry_instances and, with --probe-brokers, medkiosk_broker_up per bootstrap server.",
    )
    serve.add_argument("--listen", default="127.0.0.1:9109", help="host:port (default 127.0.0.1:9109)")
    serve.add_argument("--probe-brokers", action="store_true", help="export medkiosk_broker_up for each broker")
    serve.add_argument("--ready-file", type=Path, help="write the SD URL here once serving")
    _backend_arguments(serve)
    serve.set_defaults(func=_serve)
    reg = dsub.add_parser(
        "register",
        help="keep an endpoint registered until stopped (e.g. a Kafka broker, for kiosks' bootstrap lists)",
    )
    reg.add_argument("--service", required=True)
    reg.add_argument("--instance", required=True, help="instance id (kafka backend: a producer id with a key)")
    reg.add_argument("--endpoint", required=True, metavar="HOST:PORT")
    reg.add_argument("--meta", action="append", metavar="KEY=VALUE")
    reg.add_argument("--tcp-check", action="store_true", help="healthy only while the endpoint accepts TCP")
    reg.add_argument("--ttl-s", type=float)
    _backend_arguments(reg)
    reg.set_defaults(func=_register)
