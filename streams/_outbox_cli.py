"""``medkiosk outbox drain``: send an orphaned outbox (its producer is gone) to the broker."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_outbox_commands"]


def _drain(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from streams._outbox_drain import drain_outbox, find_outboxes
    from streams._runtime import configure_logging
    from streams._settings import BusSettings

    configure_logging()
    settings = BusSettings()
    if args.bootstrap:
        settings = settings.model_copy(update={"bootstrap_servers": args.bootstrap})
    state_dir: Path = args.state_dir or settings.state_dir
    paths: list[Path] = list(args.path or []) or find_outboxes(state_dir)
    if not paths:
        print(json.dumps({"state_dir": str(state_dir), "outboxes": 0}))
        return 0
    left = 0
    for path in paths:
        try:
            report = asyncio.run(drain_outbox(path, settings, timeout_s=args.timeout))
        except FileNotFoundError:
            print(f"outbox drain: no outbox at {path}", file=sys.stderr)
            return 2
        print(json.dumps(report.to_json()), flush=True)
        left += report.left
    return 0 if left == 0 else 3


def add_outbox_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``medkiosk outbox drain``."""
    outbox = sub.add_parser("outbox", help="durable outbox tools")
    osub = outbox.add_subparsers(dest="outbox_command", required=True)
    drain = osub.add_parser(
        "drain",
        help="send what an orphaned outbox still holds (its producer is gone), then exit",
        description="For a volume whose producer no longer runs, e.g. a gateway replica removed by a scale-in: "
        "sends every <state-dir>/<producer>/outbox.db (or each --path) in order, deleting rows only once the "
        "broker acknowledged them; needs no keys (rows are already signed). The chain state stays, so the "
        "producer can come back later. Prints one JSON line per outbox: {outbox, before, sent, left}; exit 0 "
        "when all are empty, 3 when rows are left after --timeout. Never use it on a running producer's outbox.",
    )
    drain.add_argument("--state-dir", type=Path, help="volume to scan (default: MEDKIOSK_STATE_DIR)")
    drain.add_argument("--path", type=Path, action="append", help="an outbox.db to drain (repeatable)")
    drain.add_argument("--bootstrap", help="bootstrap servers (default: MEDKIOSK_BOOTSTRAP_SERVERS)")
    drain.add_argument("--timeout", type=float, default=60.0, help="seconds per outbox (default 60)")
    drain.set_defaults(func=_drain)
