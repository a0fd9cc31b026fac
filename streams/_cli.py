"""``medkiosk topics ...`` and ``medkiosk keys ...``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tarfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from streams._settings import BusSettings

__all__ = ["add_keys_commands", "add_topics_commands"]


def _hospitals_from(settings: BusSettings, explicit: list[str] | None) -> list[str]:
    from streams._keys import Keyring

    if explicit:
        return explicit
    registry = settings.keys_dir / "registry.json"
    if registry.exists():
        return sorted({p.hospital_id for p in Keyring.load(settings.keys_dir).producers.values() if p.hospital_id})
    return []


def _topics_apply(args: argparse.Namespace) -> int:
    from streams._admin import apply_topics
    from streams._catalog import topics_for
    from streams._settings import BusSettings

    settings = BusSettings()
    if args.bootstrap:
        settings = settings.model_copy(update={"bootstrap_servers": args.bootstrap})
    hospitals = _hospitals_from(settings, args.hospital)
    reports = asyncio.run(apply_topics(settings, topics_for(hospitals)))
    for r in reports:
        print(json.dumps({"topic": r.name, "status": r.status, "partitions": r.partitions, "detail": r.detail}))
    return 1 if any(r.status == "mismatch" for r in reports) else 0


def add_topics_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    topics = sub.add_parser("topics", help="manage the topic catalog on the broker")
    tsub = topics.add_subparsers(dest="topics_command", required=True)
    apply = tsub.add_parser(
        "apply",
        help="create missing topics and validate existing ones (idempotent)",
        description="Creates every catalog topic plus hospital.<id>.events.v1 for each hospital "
        "(from --hospital, or every hospital in the keys registry). Prints one JSON line per topic; "
        "exits 1 if a topic exists with fewer partitions than wanted.",
    )
    apply.add_argument("--bootstrap", help="bootstrap servers (default: MEDKIOSK_BOOTSTRAP_SERVERS)")
    apply.add_argument("--hospital", action="append", help="hospital id (repeatable)")
    apply.set_defaults(func=_topics_apply)


def _keys_init(args: argparse.Namespace) -> int:
    from streams._keys import init_dev_keys
    from streams._settings import BusSettings

    root: Path = args.dir or BusSettings().keys_dir
    kiosks: dict[str, str] = {}
    for spec in args.kiosk or []:
        kiosk, sep, hospital = spec.partition("=")
        if not sep:
            raise SystemExit(f"--kiosk takes KIOSK_ID=HOSPITAL_ID, got {spec!r}")
        kiosks[kiosk] = hospital
    hospitals = sorted(set(args.hospital or []) | set(kiosks.values()))
    created = init_dev_keys(root, hospitals=hospitals, kiosks=kiosks, services=args.service or ["gateway-1"])
    print(json.dumps({"keys_dir": str(root), "created": created}))
    return 0


def _keys_export(args: argparse.Namespace) -> int:
    from streams._keys import export_role
    from streams._settings import BusSettings

    root: Path = args.dir or BusSettings().keys_dir
    export_role(root, args.out, producer_id=args.producer, hospitals=args.hospital or [])
    print(json.dumps({"exported_to": str(args.out), "producer": args.producer, "hospitals": args.hospital or []}))
    return 0


def _keys_unpack(args: argparse.Namespace) -> int:
    from streams._keys_archive import KeyArchiveRejected, unpack_keys

    try:
        report = unpack_keys(args.archive, args.dir)
    except (KeyArchiveRejected, OSError, tarfile.TarError) as exc:
        print(f"keys unpack: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"keys_dir": str(args.dir), "files": report.files, "directories": report.directories}))
    return 0


def add_keys_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create and export key material")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    init = ksub.add_parser(
        "init",
        help="create a development key set (never overwrites existing keys)",
        description="Creates ECDSA P-256 signing keys for kiosks and services, AES-256 data keys for "
        "hospitals, and registry.json. Production keys come from your HSM/KMS in the same layout.",
    )
    init.add_argument("--dir", type=Path, help="keys directory (default: MEDKIOSK_KEYS_DIR or .medkiosk/keys)")
    init.add_argument("--hospital", action="append", help="hospital id (repeatable)")
    init.add_argument("--kiosk", action="append", metavar="KIOSK=HOSPITAL", help="kiosk id and its hospital")
    init.add_argument("--service", action="append", help="cloud service producer id (default gateway-1)")
    init.set_defaults(func=_keys_init)
    export = ksub.add_parser(
        "export",
        help="copy one role's keys into a directory of its own",
        description="Always copies registry.json and public keys; adds --producer's signing key and the "
        "data keys of each --hospital. The gateway gets no --hospital: it never holds a data key.",
    )
    export.add_argument("--dir", type=Path, help="source keys directory")
    export.add_argument("--out", type=Path, required=True, help="destination directory (replaced)")
    export.add_argument("--producer", help="producer id whose signing key to include")
    export.add_argument("--hospital", action="append", help="hospital whose data keys to include")
    export.set_defaults(func=_keys_export)
    unpack = ksub.add_parser(
        "unpack",
        help="extract a role's key archive (e.g. from a Kubernetes Secret) into its keys directory",
        description="For init containers running as an unprivileged user in a directory they do not own: "
        "extracts files and folders only (0600 / 0700), never touches --dir itself (so a `./` entry is fine), "
        "and refuses absolute paths, `..`, links and devices before writing anything. Exit 2 on a refused "
        "archive.",
    )
    unpack.add_argument("--archive", type=Path, required=True, help="tar or tar.gz made with `tar -czf F -C dir .`")
    unpack.add_argument("--dir", type=Path, required=True, help="existing keys directory to fill")
    unpack.set_defaults(func=_keys_unpack)
