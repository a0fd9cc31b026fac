"""Python 3.10 support for the kiosk on JetPack 6 (the Jetson image runs the base image's own 3.10).

The code is written for 3.11, where ``asyncio.TimeoutError`` *is* the builtin ``TimeoutError`` (bpo-42413), so
``except TimeoutError`` around ``asyncio.wait_for`` is the idiom throughout. On 3.10 they are different classes
and such a timeout would escape. ``backport_timeout_error`` makes them one class, exactly as 3.11 does, before
anything else is imported; it does nothing on 3.11+. (Other 3.10 gaps are handled where they occur:
``tomllib``, ``enum.StrEnum``, ``typing.Self``.)
"""

from __future__ import annotations

import asyncio
import asyncio.exceptions
import builtins

__all__ = ["backport_timeout_error"]


def backport_timeout_error() -> None:
    """Alias ``asyncio.TimeoutError`` to the builtin ``TimeoutError`` on Python 3.10 (as 3.11 does)."""
    if asyncio.exceptions.TimeoutError is builtins.TimeoutError:
        return
    vars(asyncio.exceptions)["TimeoutError"] = builtins.TimeoutError
    vars(asyncio)["TimeoutError"] = builtins.TimeoutError
