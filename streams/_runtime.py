"""What every long-running medkiosk process shares: logging, clean stop on SIGTERM/SIGINT, a stats file."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

__all__ = ["StatsFile", "configure_logging", "run_until_stopped"]


def configure_logging(level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("MEDKIOSK_LOG_LEVEL", "WARNING")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


class StatsFile:
    """Atomically rewritten JSON file with a process's counters, for ``medkiosk up`` and operators."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, stats: dict[str, Any]) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text(json.dumps(stats, sort_keys=True))
        tmp.replace(self.path)


async def run_until_stopped(
    main: Callable[[asyncio.Event], Awaitable[None]],
) -> None:
    """Run ``main(stop)`` where ``stop`` is set by SIGTERM or SIGINT; ``main`` returns when it sees it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await main(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(sig)
