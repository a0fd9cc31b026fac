"""Kiosk-side commands: ``medkiosk kiosk simulate`` (and the device emulators when present)."""

from __future__ import annotations

import argparse
import asyncio

from edge_agent.simulator import SimulatedKiosk, SimulatedKioskConfig
from streams import configure_logging, run_until_stopped
from streams._service import add_service_arguments, periodic_stats, service_context

__all__ = ["add_edge_commands"]


def _simulate(args: argparse.Namespace) -> int:
    configure_logging()
    ctx = service_context(args, args.kiosk_id)
    kiosk = SimulatedKiosk(
        SimulatedKioskConfig(kiosk_id=args.kiosk_id, hospital_id=args.hospital, rate_hz=args.rate, seed=args.seed),
        ctx.settings,
        ctx.keyring,
        ctx.metrics,
    )

    async def main(stop: asyncio.Event) -> None:
        await kiosk.start()
        async with periodic_stats(ctx.stats, kiosk.stats):
            if args.duration:
                asyncio.get_running_loop().call_later(args.duration, stop.set)
            await kiosk.run(stop)
            await kiosk.stop(drain_s=args.drain)
        ctx.stats.write(kiosk.stats())

    asyncio.run(run_until_stopped(main))
    return 0 if kiosk.stats()["outbox_depth"] == 0 else 3


def add_edge_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    kiosk = sub.add_parser("kiosk", help="kiosk-side processes")
    ksub = kiosk.add_subparsers(dest="kiosk_command", required=True)
    sim = ksub.add_parser(
        "simulate",
        help="run a kiosk that publishes synthetic identity checks",
        description="Publishes synthetic (marked synthetic=true) identity checks on kiosk.identity.v1, "
        "sealed for its hospital and sent through the durable outbox. On SIGTERM it stops producing, "
        "drains the outbox (up to --drain seconds) and exits 0 if nothing is left unsent.",
    )
    sim.add_argument("--kiosk-id", required=True)
    sim.add_argument("--hospital", required=True, help="hospital id the kiosk belongs to")
    sim.add_argument("--rate", type=float, default=5.0, help="events per second (default 5)")
    sim.add_argument("--duration", type=float, help="stop after this many seconds (default: run until SIGTERM)")
    sim.add_argument("--drain", type=float, default=60.0, help="seconds to wait for the outbox to empty on stop")
    sim.add_argument("--seed", type=int, default=0)
    add_service_arguments(sim)
    sim.set_defaults(func=_simulate)
    try:
        from edge_agent.sensors._cli import add_emulate_commands  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return
    add_emulate_commands(sub)
