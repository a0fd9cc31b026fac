"""Cloud-side commands: ``medkiosk gateway``, ``medkiosk subscribe``, ``medkiosk audit replay``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from streams._service_args import add_service_arguments

__all__ = ["add_cloud_commands"]


def _gateway(args: argparse.Namespace) -> int:
    from cloud_workers.gateway import Gateway, GatewayConfig
    from streams import configure_logging, run_until_stopped
    from streams._service import periodic_stats, service_context

    configure_logging()
    ctx = service_context(args, args.gateway_id)
    gateway = Gateway(
        GatewayConfig(
            gateway_id=args.gateway_id,
            group_id=args.group,
            transactional=args.transactional,
            batch_sign=not args.sign_each,
        ),
        ctx.settings,
        ctx.keyring,
        ctx.metrics,
    )
    ctx.readiness.add("kafka-assigned", lambda: bool(gateway.stats()["ready"]))

    async def main(stop: asyncio.Event) -> None:
        from streams.discovery import announce_service

        await gateway.start()
        announced = announce_service(
            service="cloud-gateway",
            instance_id=args.gateway_id,
            role="gateway",
            bus=ctx.settings,
            keyring=ctx.keyring,
            metrics=ctx.metrics,
        )
        async with announced, periodic_stats(ctx.stats, gateway.stats):
            await gateway.run(stop)
            await gateway.stop(drain_s=args.drain)

    asyncio.run(run_until_stopped(main))
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    from cloud_workers.hospital._command import run_subscribe

    return run_subscribe(args)


def _audit_replay(args: argparse.Namespace) -> int:
    from cloud_workers.audit import replay_topic
    from cloud_workers.audit._times import parse_time_ms
    from streams._service import service_context

    try:
        times = {
            k: None if v is None else parse_time_ms(v) for k, v in (("from", args.from_time), ("to", args.to_time))
        }
    except ValueError as exc:
        print(f"audit replay: {exc}", file=sys.stderr)
        return 2
    ctx = service_context(args, "audit")
    report = asyncio.run(
        replay_topic(
            ctx.settings,
            ctx.keyring,
            args.topic,
            from_offset=args.from_offset,
            to_offset=args.to_offset,
            from_time_ms=times["from"],
            to_time_ms=times["to"],
        )
    )
    print(json.dumps(report.to_json()))
    if args.report:
        from cloud_workers.audit import write_report

        page, data = write_report(report, args.report)
        print(f"audit replay: report {page} (machine-readable: {data})", file=sys.stderr)
    return 0 if report.bad == 0 else 1


def _audit_follow(args: argparse.Namespace) -> int:
    from cloud_workers.audit._command import run_follow

    return run_follow(args)


def _control_scale(args: argparse.Namespace) -> int:
    from cloud_workers.control import publish_commands, scaling_command
    from streams._service import service_context

    ctx = service_context(args, args.producer)
    cmd = scaling_command(
        args.target,
        inference_workers=args.workers or 0,
        camera_fps=args.fps or 0.0,
        max_batch=args.max_batch or 0,
        replicas=args.replicas or 0,
        reason=args.reason,
        ttl_s=args.ttl,
    )
    outbox = ctx.settings.state_dir / args.producer / "outbox.db"
    asyncio.run(
        publish_commands(
            [cmd], producer_id=args.producer, settings=ctx.settings, keyring=ctx.keyring, outbox_path=outbox
        )
    )
    print(json.dumps({"command_id": cmd.command_id, "target": cmd.target, "published": True}))
    return 0


def add_cloud_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    gw = sub.add_parser(
        "gateway",
        help="verify kiosk events, audit them and route each to its hospital's topic",
        description="Consumes kiosk.identity.v1 and kiosk.inference.v1, verifies signature, sequence and "
        "chain WITHOUT decrypting (it refuses to start with any hospital data key), writes an AuditRecord "
        "to audit.v1 and forwards the envelope to hospital.<id>.events.v1. Rejections go to dlq.v1.",
    )
    gw.add_argument("--gateway-id", default="gateway-1", help="this gateway's producer id (signs audit records)")
    gw.add_argument("--group", default="medkiosk-gateway", help="consumer group")
    gw.add_argument(
        "--transactional",
        action="store_true",
        help="exactly-once output through Kafka transactions (Apache Kafka only; readers use read_committed) "
        "instead of the local outbox",
    )
    gw.add_argument(
        "--sign-each",
        action="store_true",
        help="one ECDSA signature per audit record instead of one per batch (the default signs a batch's "
        "Merkle root once and gives every record its inclusion proof; docs/ENVELOPE.md section 3a)",
    )
    gw.add_argument(
        "--drain", type=float, default=10.0, help="seconds to keep sending the outbox after SIGTERM (default 10)"
    )
    add_service_arguments(gw)
    gw.set_defaults(func=_gateway)

    s = sub.add_parser(
        "subscribe",
        help="what a hospital system runs: its decrypted events as JSON or FHIR R5 lines",
        description="A FastStream app on hospital.<id>.events.v1: verifies and deduplicates every envelope, "
        "decrypts it with the hospital's own data key and writes one line per event to --output; whatever "
        "fails goes to dlq.v1 with its reason.",
    )
    s.add_argument("--hospital", required=True, help="hospital id")
    s.add_argument("--group", help="consumer group (default hospital-<id>)")
    s.add_argument("--start", choices=["earliest", "latest"], default="earliest", help="where a new group starts")
    s.add_argument(
        "--format",
        choices=["json", "fhir"],
        default="json",
        help="json: one JSON object per event; fhir: one FHIR R5 subscription-notification Bundle per event",
    )
    s.add_argument(
        "--output",
        help="append one line per event to this file, '-' for stdout (default: "
        "<state-dir>/subscriber-<id>/events.<format>.jsonl; decrypted events never go to stdout unasked)",
    )
    s.add_argument("--fhir-base", default="urn:medkiosk", help="base of the FHIR identifier systems and URLs")
    s.add_argument(
        "--subscription-topic", action="store_true", help="print the hospital's FHIR SubscriptionTopic and exit"
    )
    s.add_argument("--max-events", type=int, help="exit after this many events")
    add_service_arguments(s)
    s.set_defaults(func=_subscribe)

    control = sub.add_parser("control", help="send signed commands to kiosks and deployments")
    csub = control.add_subparsers(dest="control_command", required=True)
    scale = csub.add_parser(
        "scale",
        help="publish a scaling command on control.scaling.v1",
        description="Signed by --producer (which kiosks must list in [commands] allowed_producers). "
        "Only the given settings change; the command expires after --ttl seconds.",
    )
    scale.add_argument("--target", required=True, help="kiosk id, group:<name>, group:* or a deployment name")
    scale.add_argument("--workers", type=int, help="inference workers")
    scale.add_argument("--fps", type=float, help="camera frames per second")
    scale.add_argument("--max-batch", type=int, help="largest inference batch")
    scale.add_argument("--replicas", type=int, help="replicas (deployments)")
    scale.add_argument("--reason", default="operator", help="free text kept with the command")
    scale.add_argument("--ttl", type=float, default=300.0, help="seconds until the command expires")
    scale.add_argument("--producer", default="autoscaler-1", help="producer id that signs the command")
    add_service_arguments(scale)
    scale.set_defaults(func=_control_scale)

    audit = sub.add_parser("audit", help="auditor tools")
    asub = audit.add_subparsers(dest="audit_command", required=True)
    replay = asub.add_parser(
        "replay",
        help="re-read a topic and verify every envelope and chain",
        description="Verifies signatures, sequence numbers and hash chains of every envelope in the range "
        "(public keys only, nothing is decrypted). Prints one JSON report; exit 1 and first_bad "
        "{partition, offset, reason} if anything fails.",
    )
    replay.add_argument("--topic", required=True)
    replay.add_argument("--from-offset", type=int, help="first offset to read, per partition")
    replay.add_argument("--to-offset", type=int, help="stop before this offset, per partition")
    replay.add_argument(
        "--report",
        type=Path,
        help="also write a self-contained HTML report here (per producer and stream: seqs, chain, gaps, first "
        "bad offset, timeline) and the JSON report beside it (.json)",
    )
    replay.add_argument(
        "--from-time", help="first record time, ISO 8601 (UTC unless it says) or epoch ms; via offsets_for_times"
    )
    replay.add_argument("--to-time", help="stop before records stamped at or after this time (same forms)")
    add_service_arguments(replay)
    replay.set_defaults(func=_audit_replay)
    follow = asub.add_parser(
        "follow",
        help="follow audit.v1 live (and dlq.v1 with --dlq), verified, as JSON lines",
        description="A FastStream app on audit.v1: verifies each gateway-signed audit record (public keys only) "
        "and writes one JSON line per record to --output; a record that fails goes to dlq.v1. With --dlq it "
        "also shows dlq.v1 (dead letters are not signed: shown, not verified).",
    )
    follow.add_argument("--group", default="medkiosk-auditor", help="consumer group")
    follow.add_argument("--dlq", action="store_true", help="also follow dlq.v1")
    follow.add_argument("--output", help="append JSON lines here, '-' for stdout (default: <state-dir>/auditor/)")
    add_service_arguments(follow)
    follow.set_defaults(func=_audit_follow)
