"""Kiosk-side commands: ``medkiosk kiosk simulate`` (and the device emulators when present)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from streams._service_args import add_service_arguments

__all__ = ["add_edge_commands"]


def _simulate(args: argparse.Namespace) -> int:
    from edge_agent.simulator import SimulatedKiosk, SimulatedKioskConfig
    from streams import configure_logging, run_until_stopped
    from streams._service import periodic_stats, service_context

    configure_logging()
    ctx = service_context(args, args.kiosk_id)
    kiosk = SimulatedKiosk(
        SimulatedKioskConfig(kiosk_id=args.kiosk_id, hospital_id=args.hospital, rate_hz=args.rate, seed=args.seed),
        ctx.settings,
        ctx.keyring,
        ctx.metrics,
    )

    async def main(stop: asyncio.Event) -> None:
        from streams.discovery import announce_service

        await kiosk.start()
        announced = announce_service(
            service="kiosk",
            instance_id=args.kiosk_id,
            role="kiosk",
            bus=ctx.settings,
            keyring=ctx.keyring,
            metrics=ctx.metrics,
            meta={"hospital": args.hospital, "simulated": "true"},
        )
        async with announced, periodic_stats(ctx.stats, kiosk.stats):
            if args.duration:
                asyncio.get_running_loop().call_later(args.duration, stop.set)
            await kiosk.run(stop)
            await kiosk.stop(drain_s=args.drain)
        ctx.stats.write(kiosk.stats())

    asyncio.run(run_until_stopped(main))
    return 0 if kiosk.stats()["outbox_depth"] == 0 else 3


def _edge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from edge_agent.agent import EdgeAgent, ModelSink, load_config
    from edge_agent.agent._camera import CameraLiveness
    from edge_agent.agent._triage_backend import KioskTriage
    from streams import configure_logging, run_until_stopped
    from streams._service import periodic_stats, service_context

    configure_logging()
    config = load_config(Path(args.config))
    ctx = service_context(args, config.kiosk_id, defaults=config.bus)

    async def main(stop: asyncio.Event) -> None:
        sinks: dict[str, ModelSink] = {}
        triage = None
        if config.triage.enabled:
            triage = await KioskTriage.create(
                config.triage,
                kiosk_id=config.kiosk_id,
                hospital_id=config.hospital_id,
                synthetic=args.synthetic,
                state_dir=ctx.settings.state_dir,
            )
            sinks[triage.service.vocab.model_name] = triage.swap_model
        camera = None
        if config.camera.source.lower() != "none":
            camera = CameraLiveness.create(
                config.camera, config.liveness, models_dir=ctx.settings.state_dir / config.kiosk_id / "models"
            )
            sinks["liveness"] = camera.swap_model
        agent = EdgeAgent(
            config,
            ctx.settings,
            ctx.keyring,
            ctx.metrics,
            liveness=camera,
            triage=triage,
            model_sinks=sinks,
            synthetic=args.synthetic,
        )
        await agent.start()
        from edge_agent.agent._discovery import kiosk_announcement

        announced = kiosk_announcement(config, ctx.settings, ctx.keyring, ctx.metrics, agent.models)
        async with announced, periodic_stats(ctx.stats, agent.stats):
            try:
                await agent.run(stop)
            finally:
                await agent.stop(drain_s=args.drain)
        ctx.stats.write(agent.stats())

    asyncio.run(run_until_stopped(main))
    return 0


def _emulate_patients(args: argparse.Namespace) -> int:
    import json
    import random

    from edge_agent.triage import MODELS_DIR, TriageVocab
    from streams import run_until_stopped

    vocab = TriageVocab.load(next(MODELS_DIR.glob("*.vocab.json")))
    rng = random.Random(args.seed)
    host, _, port = args.connect.rpartition(":")

    async def main(stop: asyncio.Event) -> None:
        for attempt in range(300):  # the agent may still be starting
            try:
                reader, writer = await asyncio.open_connection(host or "127.0.0.1", int(port))
                break
            except OSError:
                if attempt == 299 or stop.is_set():
                    raise
                await asyncio.sleep(0.1)
        sent = 0
        while not stop.is_set() and (args.count is None or sent < args.count):
            symptoms = rng.sample(list(vocab.symptoms), rng.randint(1, 4))
            writer.write(json.dumps({"request_id": f"{args.prefix}{sent}", "symptoms": symptoms}).encode() + b"\n")
            await writer.drain()
            print((await reader.readline()).decode().strip(), flush=True)
            sent += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0 / args.rate)
        writer.close()

    asyncio.run(run_until_stopped(main))
    return 0


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
    edge = sub.add_parser(
        "edge",
        help="run a real kiosk agent (card reader, camera, triage) from a TOML config",
        description="Reads cards on the configured serial port, checks liveness on the camera, fuses the two "
        "within the window and publishes identity checks; serves triage to the kiosk UI on a local endpoint; "
        "applies signed commands and model versions from the cloud; sends telemetry. See the README for the "
        "config format.",
    )
    edge.add_argument("--config", required=True, help="kiosk TOML file")
    edge.add_argument("--synthetic", action="store_true", help="mark events as synthetic (emulated devices)")
    edge.add_argument("--drain", type=float, default=30.0, help="seconds to wait for the outbox to empty on stop")
    add_service_arguments(edge)
    edge.set_defaults(func=_edge)

    from edge_agent._emulate_cli import add_emulate_commands

    add_emulate_commands(sub)
    emulate = sub.choices["emulate"]
    esub = next(a for a in emulate._actions if isinstance(a, argparse._SubParsersAction))
    patients = esub.add_parser(
        "patients",
        help="act as the kiosk UI: send random symptom selections to an agent's triage endpoint",
        description="Sends synthetic patients (1-4 symptoms from the model's vocabulary) and prints each reply.",
    )
    patients.add_argument("--connect", default="127.0.0.1:8765", help="the agent's [triage] listen address")
    patients.add_argument("--rate", type=float, default=1.0, help="patients per second")
    patients.add_argument("--count", type=int, help="stop after this many")
    patients.add_argument("--prefix", default="patient-", help="request id prefix")
    patients.add_argument("--seed", type=int, default=0)
    patients.set_defaults(func=_emulate_patients)
