"""``medkiosk emulate rfid``: a software RFID reader on a pty, printing the ground truth of what it sent.

The parser lives in ``edge_agent._emulate_cli`` (no pyserial needed to print help); this module runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys

from edge_agent._emulate_cli import add_emulate_commands
from edge_agent.sensors._rfid_emulator import RfidEmulator, RfidEmulatorConfig

__all__ = ["add_emulate_commands"]


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
