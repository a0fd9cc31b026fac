"""The options every service command takes, with nothing but argparse behind them.

Command registration (each package's ``_cli.py``) imports this module only, so ``medkiosk --help`` works with
any one extra installed; the service machinery itself (``streams._service``) is imported by the handlers.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path

__all__ = ["add_service_arguments", "lazy_handler"]


def lazy_handler(target: str) -> Callable[[argparse.Namespace], int]:
    """A command handler that imports ``package.module:function`` only when the command runs.

    For parsers registered outside the module that implements them, so that registering (and ``--help``) never
    imports a role's dependencies.
    """
    module, sep, name = target.partition(":")
    if not sep:
        raise ValueError(f"expected MODULE:FUNCTION, got {target!r}")

    def run(args: argparse.Namespace) -> int:
        handler: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return handler(args)

    run.__qualname__ = run.__name__ = f"lazy:{target}"
    return run


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """Options every service command takes (each also has a ``MEDKIOSK_*`` variable)."""
    parser.add_argument(
        "--bootstrap", help="bootstrap servers (default: MEDKIOSK_BOOTSTRAP_SERVERS or 127.0.0.1:19092)"
    )
    parser.add_argument("--keys-dir", type=Path, help="keys directory (default: MEDKIOSK_KEYS_DIR)")
    parser.add_argument("--state-dir", type=Path, help="local state such as outboxes (default: MEDKIOSK_STATE_DIR)")
    parser.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port (0: off)")
    parser.add_argument("--stats-file", type=Path, help="keep a JSON file of this process's counters up to date")
