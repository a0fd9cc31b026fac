"""``medkiosk audit follow``: the auditor's live FastStream app, one JSON line per audit record / dead letter."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import IO, Any

__all__ = ["run_follow"]

log = logging.getLogger(__name__)


def _open(output: str | None, state_dir: Path) -> tuple[IO[str], str]:
    if output == "-":
        return sys.stdout, "stdout"
    path = Path(output) if output else state_dir / "auditor" / "audit.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", buffering=1), str(path)


def run_follow(args: argparse.Namespace) -> int:
    """Handler of ``medkiosk audit follow``."""
    from cloud_workers.audit._follow import AuditFollower, AuditFollowerConfig
    from streams import configure_logging, run_until_stopped
    from streams._service import periodic_stats, service_context

    configure_logging()
    ctx = service_context(args, "auditor")
    out, where = _open(args.output, ctx.settings.state_dir)
    log.warning("auditor: writing audit records%s to %s", " and dead letters" if args.dlq else "", where)

    async def emit(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj, separators=(",", ":"), sort_keys=True) + "\n")
        out.flush()

    follower = AuditFollower(
        AuditFollowerConfig(
            group_id=args.group, dlq=args.dlq, state_path=ctx.settings.state_dir / "chains" / f"{args.group}.db"
        ),
        ctx.settings,
        ctx.keyring,
        ctx.metrics,
        emit,
    )

    async def main(stop: asyncio.Event) -> None:
        async with follower, periodic_stats(ctx.stats, follower.stats):
            await stop.wait()

    try:
        asyncio.run(run_until_stopped(main))
    finally:
        if out is not sys.stdout:
            out.close()
    return 0
