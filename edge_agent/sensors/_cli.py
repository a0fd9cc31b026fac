"""``medkiosk emulate rfid``: a software RFID reader on a pty, printing the ground truth of what it sent."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from edge_agent.sensors._rfid_emulator import RfidEmulator, RfidEmulatorConfig

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
    rfid.set_defaults(func=_emulate_rfid)


def _emulate_rfid(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=os.environ.get("MEDKIOSK_LOG_LEVEL", "WARNING").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"medkiosk emulate rfid: {exc}", file=sys.stderr)
        return 2
    emulator = RfidEmulator(config)

    async def main() -> None:
        async with emulator:
            await emulator.run()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    finally:
        for card in emulator.sent:
            print(json.dumps(dataclasses.asdict(card)), flush=True)
    return 0


def _config(args: argparse.Namespace) -> RfidEmulatorConfig:
    return RfidEmulatorConfig(
        link=args.link,
        frame_format=args.frame_format,
        cards=tuple(c.strip() for c in args.cards.split(",") if c.strip()),
        count=args.count,
        rate_hz=args.rate,
        repeats=args.repeats,
        noise=args.noise,
        partial=args.partial,
        bad_checksum=args.bad_checksum,
        unplug_after=args.unplug_after,
        unplug_for_s=args.unplug_for,
        unplug_mid_frame=args.unplug_mid_frame,
        wait_for_reader_s=args.wait_for_reader,
        seed=args.seed,
    )
