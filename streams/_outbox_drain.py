"""Send what an outbox still holds when its producer is gone (an orphaned volume after a scale-in).

Rows in an outbox are already sealed and signed, so draining needs no key: only the broker. The producer's
chain state stays in the file, so if that producer (e.g. gateway ordinal 5) comes back later it goes on with
its own sequence. Consumers dedupe on (producer, stream, seq), so a row the broker took just before the
producer died and that is sent again here is dropped downstream, never delivered twice.

Never run it on the outbox of a producer that is still running (it would race that producer's own sender).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from streams._metrics import BusMetrics
from streams._outbox import Outbox
from streams._sender import OutboxSender
from streams._settings import BusSettings

__all__ = ["DrainReport", "drain_outbox", "find_outboxes"]


@dataclass(frozen=True, kw_only=True)
class DrainReport:
    path: Path
    before: int
    sent: int
    left: int

    def to_json(self) -> dict[str, object]:
        return {"outbox": str(self.path), "before": self.before, "sent": self.sent, "left": self.left}


def find_outboxes(state_dir: Path) -> list[Path]:
    """``<state_dir>/<producer>/outbox.db`` files (the layout every medkiosk producer uses), sorted."""
    return sorted(p for p in state_dir.glob("*/outbox.db") if p.is_file())


async def drain_outbox(path: Path, settings: BusSettings, *, timeout_s: float = 60.0) -> DrainReport:
    """Send ``path``'s rows in order until it is empty or ``timeout_s`` passes; rows are deleted only once
    the broker acknowledged them."""
    if not await asyncio.to_thread(path.is_file):
        raise FileNotFoundError(path)
    outbox = await asyncio.to_thread(Outbox, path)
    try:
        before, _ = await asyncio.to_thread(outbox.depth)
        if before == 0:
            return DrainReport(path=path, before=0, sent=0, left=0)
        sender = OutboxSender(outbox, settings, BusMetrics("outbox-drain"))
        await sender.start()
        try:
            await sender.drain(timeout_s)
        finally:
            await sender.stop()
        left, _ = await asyncio.to_thread(outbox.depth)
        return DrainReport(path=path, before=before, sent=sender.sent, left=left)
    finally:
        outbox.close()
