"""``medkiosk subscribe``: run one hospital's subscriber; decrypted events leave only through ``--output``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO

from cloud_workers.hospital._hospital import HospitalSubscriber, SubscriberConfig, dumps, event_to_json
from cloud_workers.hospital._verdict import Accepted

__all__ = ["run_subscribe"]

log = logging.getLogger(__name__)


def _open_output(args: argparse.Namespace, state_dir: Path) -> tuple[IO[str], str]:
    if args.output == "-":
        return sys.stdout, "stdout"
    path = (
        Path(args.output) if args.output else state_dir / f"subscriber-{args.hospital}" / f"events.{args.format}.jsonl"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", buffering=1), str(path)


def run_subscribe(args: argparse.Namespace) -> int:
    """Handler of ``medkiosk subscribe``."""
    if args.subscription_topic:
        from cloud_workers.hospital._fhir import subscription_topic, validate

        resource = subscription_topic(args.hospital, args.fhir_base)
        validate(resource)
        print(json.dumps(resource, indent=2))
        return 0

    from streams import configure_logging, run_until_stopped
    from streams._service import periodic_stats, service_context

    configure_logging()
    ctx = service_context(args, f"subscriber-{args.hospital}")
    config = SubscriberConfig(hospital_id=args.hospital, group_id=args.group, auto_offset_reset=args.start)
    group = config.group_id or f"hospital-{args.hospital}"
    out, where = _open_output(args, ctx.settings.state_dir)
    log.warning("subscriber-%s: writing %s events to %s", args.hospital, args.format, where)
    render = _renderer(args, group)

    async def sink(event: Accepted) -> None:
        line = render(event)
        out.write(line + "\n")
        out.flush()

    sub = HospitalSubscriber(config, ctx.settings, ctx.keyring, ctx.metrics, sink)
    ctx.readiness.add("kafka-assigned", lambda: bool(sub.stats()["ready"]))

    async def main(stop: asyncio.Event) -> None:
        from streams.discovery import announce_service

        announced = announce_service(
            service="hospital-subscriber",
            instance_id=f"subscriber-{args.hospital}",
            role="subscriber",
            bus=ctx.settings,
            keyring=ctx.keyring,
            metrics=ctx.metrics,
            meta={"hospital": args.hospital},
        )
        async with sub, announced, periodic_stats(ctx.stats, sub.stats):
            if args.max_events:
                while not stop.is_set() and sub.delivered < args.max_events:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), 0.05)
            else:
                await stop.wait()

    try:
        asyncio.run(run_until_stopped(main))
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


def _renderer(args: argparse.Namespace, group: str) -> Callable[[Accepted], str]:
    if args.format == "json":
        return lambda event: dumps(event_to_json(event))
    from cloud_workers.hospital._fhir import FhirMapper, validate

    mapper = FhirMapper(hospital_id=args.hospital, group_id=group, base=args.fhir_base)

    def fhir(event: Accepted) -> str:
        bundle = mapper.notification(event)
        validate(bundle)  # never hand a hospital system a resource its FHIR parser would refuse
        return dumps(bundle)

    return fhir
