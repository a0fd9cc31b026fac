"""Background tasks that fail loudly: a crash is logged at once instead of vanishing with the task."""

from __future__ import annotations

import asyncio
import logging
from typing import TypeVar

__all__ = ["supervise"]

log = logging.getLogger("medkiosk")
T = TypeVar("T")


def _report(task: asyncio.Task[T]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s crashed", task.get_name(), exc_info=task.exception())


def supervise(task: asyncio.Task[T]) -> asyncio.Task[T]:
    """Attach a done-callback that logs the task's crash."""
    task.add_done_callback(_report)
    return task
