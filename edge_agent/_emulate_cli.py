"""Parser of ``medkiosk emulate rfid``; the emulator (pyserial) is imported only when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from streams._service_args import lazy_handler

__all__ = ["add_emulate_commands"]


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability in [0, 1]")
    return value


def add_emulate_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``emulate rfid`` to a CLI; the parsed namespace's ``func(args) -> int`` runs it."""
    emulate = subparsers.add_parser("emulate", help="software stand-ins for kiosk devices")
    esub = emulate.add_subparsers(dest="emulate_command", required=True)
    rfid = esub.add_parser(
        "rfid",
        help="an RFID reader on a pseudo-terminal",
        description="Creates a pty, points --link at it, and sends card frames as a serial RFID reader would. "
        "Prints one JSON line per valid frame sent (the ground truth) to stdout when done.",
    )
    rfid.add_argument("--link", type=Path, required=True, help="symlink path readers open (e.g. /tmp/rfid0)")
    rfid.add_argument("--format", choices=["em4100", "line"], default="em4100", dest="frame_format")
    rfid.add_argument("--cards", default="", help="comma-separated card numbers used in turn (default: random)")
    rfid.add_argument("--rate", type=float, default=5.0, help="taps per second (default 5)")
    rfid.add_argument("--count", type=int, default=10, help="taps to send (default 10)")
    rfid.add_argument("--repeats", type=int, default=1, help="frames per tap (default 1)")
    rfid.add_argument("--noise", type=_probability, default=0.0, help="probability of a glitch before a frame")
    rfid.add_argument("--partial", type=_probability, default=0.0, help="probability a frame is split")
    rfid.add_argument("--bad-checksum", type=_probability, default=0.0, help="probability of a misread copy")
    rfid.add_argument("--unplug-after", type=int, help="unplug just before this tap (0-based)")
    rfid.add_argument("--unplug-for", type=float, default=1.0, help="seconds unplugged (default 1)")
    rfid.add_argument("--unplug-mid-frame", action="store_true", help="pull the cable halfway through a frame")
    rfid.add_argument(
        "--wait-for-reader", type=float, default=5.0, help="seconds to wait for a reader after plugging (default 5)"
    )
    rfid.add_argument("--seed", type=int, default=0)
    rfid.set_defaults(func=lazy_handler("edge_agent.sensors._cli:_emulate_rfid"))
