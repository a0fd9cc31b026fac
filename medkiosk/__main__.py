"""``medkiosk``: one command, each subcommand owned by the package that implements it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from medkiosk import __version__

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from cloud_workers._cli import add_cloud_commands
    from cloud_workers._trainer_cli import add_trainer_commands
    from cloud_workers.autoscaler._cli import add_autoscaler_commands
    from edge_agent._cli import add_edge_commands
    from medkiosk._fl_cli import add_fl_commands
    from medkiosk._up_cli import add_up_command
    from streams._cli import add_keys_commands, add_topics_commands
    from streams._outbox_cli import add_outbox_commands
    from streams.broker._cli import add_broker_commands
    from streams.discovery._cli import add_discover_commands

    parser = argparse.ArgumentParser(
        prog="medkiosk",
        description="Smart, safe hospital kiosks on Kafka. `medkiosk up` runs the whole system on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"medkiosk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_up_command(sub)
    add_broker_commands(sub)
    add_topics_commands(sub)
    add_keys_commands(sub)
    add_outbox_commands(sub)
    add_edge_commands(sub)
    add_cloud_commands(sub)
    add_autoscaler_commands(sub)
    add_trainer_commands(sub)
    add_fl_commands(sub)
    add_discover_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from medkiosk._compat import backport_timeout_error

    backport_timeout_error()  # a no-op on 3.11+; before any role module is imported
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
