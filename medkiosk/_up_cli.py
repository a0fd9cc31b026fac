"""Argument parsing for ``medkiosk up``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_up_command"]


def _outage(value: str) -> tuple[float, float]:
    at, sep, dur = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return float(at), float(dur)
    except ValueError:
        raise argparse.ArgumentTypeError("expected AT:FOR in seconds, e.g. 5:10") from None


def _up(args: argparse.Namespace) -> int:
    from medkiosk._up import UpOptions, run_up

    if args.secured and (args.engine != "kafka" or args.bootstrap or args.fl_rounds):
        raise SystemExit("--secured needs --engine kafka, no --bootstrap, and no --fl-rounds (one process, many roles)")
    if args.broker_outage and args.bootstrap:
        raise SystemExit("--broker-outage needs the embedded broker (drop --bootstrap)")
    if args.broker_outage and args.storage == "memory" and args.engine == "tansu":
        print("warning: a memory-storage broker forgets everything when it stops; use --storage s3", flush=True)
    result = run_up(
        UpOptions(
            hospitals=args.hospitals,
            kiosks_per_hospital=args.kiosks,
            rate_hz=args.rate,
            duration_s=args.duration,
            bootstrap=args.bootstrap,
            storage=args.storage,
            engine=args.engine,
            secured=args.secured,
            port=args.port,
            state_dir=args.state_dir,
            keys_dir=args.keys_dir,
            metrics_base_port=args.metrics_base_port,
            outage=args.broker_outage,
            seed=args.seed,
            kiosk_mode=args.kiosk_mode,
            fl_rounds=args.fl_rounds,
            autoscaler=not args.no_autoscaler,
            autoscaler_checkpoint=args.autoscaler_checkpoint,
            prometheus=args.prometheus,
            prometheus_interval_s=args.prometheus_interval,
        )
    )
    print(json.dumps(result.summary), flush=True)
    s = result.summary
    return 0 if s["lost"] == 0 and s["duplicates"] == 0 and s["misrouted"] == 0 else 1


def add_up_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "up",
        help="run the whole system on this machine (broker, kiosks, gateway, subscribers)",
        description="Starts the embedded broker (unless --bootstrap), applies topics, creates dev keys if "
        "absent, runs kiosks, the gateway and one subscriber per hospital as separate processes for "
        "--duration seconds, stops them cleanly, and prints as its last line one JSON object: "
        '{"published", "delivered", "lost", "duplicates", "rejected", "misrouted", "e2e_p50_ms", "e2e_p99_ms"}. '
        "Exit 0 when nothing was lost, duplicated or misrouted.",
    )
    up.add_argument("--hospitals", type=int, default=2, help="number of hospitals (default 2)")
    up.add_argument("--kiosks", type=int, default=2, help="kiosks per hospital (default 2)")
    up.add_argument("--rate", type=float, default=5.0, help="events per second per kiosk (default 5)")
    up.add_argument("--duration", type=float, default=20.0, help="seconds of traffic (default 20)")
    up.add_argument("--bootstrap", help="use this Kafka cluster instead of the embedded broker")
    up.add_argument("--storage", choices=["memory", "s3"], default="memory", help="embedded broker storage")
    up.add_argument(
        "--secured",
        action="store_true",
        help="with --engine kafka: SASL/SCRAM-SHA-512, one principal per role, the ACLs of `medkiosk acls plan`",
    )
    up.add_argument(
        "--engine",
        choices=["tansu", "kafka"],
        default="tansu",
        help="local broker: tansu (embedded, no Java; default) or kafka (Apache Kafka 4, KRaft, durable log dir)",
    )
    up.add_argument("--port", type=int, default=0, help="embedded broker port (default: a free port)")
    up.add_argument("--state-dir", type=Path, default=Path(".medkiosk"), help="where keys, outboxes and logs go")
    up.add_argument("--keys-dir", type=Path, help="keys directory (default <state-dir>/keys)")
    up.add_argument("--metrics-base-port", type=int, default=0, help="give each process /metrics from this port up")
    up.add_argument("--broker-outage", type=_outage, metavar="AT:FOR", help="stop the embedded broker mid-run")
    up.add_argument(
        "--kiosk-mode",
        choices=["edge", "simulated"],
        default="edge",
        help="edge: real kiosk agents on emulated card readers, cameras and UIs (default); "
        "simulated: synthetic identity checks only (lighter)",
    )
    up.add_argument(
        "--fl-rounds", type=int, default=0, help="also run this many federated-learning rounds (summary key 'fl')"
    )
    up.add_argument("--no-autoscaler", action="store_true", help="do not run the autoscaler (summary key 'autoscaler')")
    up.add_argument("--autoscaler-checkpoint", type=Path, help="LSTM checkpoint for the autoscaler")
    up.add_argument(
        "--prometheus",
        action="store_true",
        help="also run the registry's SD endpoint and a real Prometheus on loopback (needs the prometheus binary); "
        "prints its URL",
    )
    up.add_argument("--prometheus-interval", type=float, default=5.0, help="scrape and rule evaluation interval (s)")
    up.add_argument("--seed", type=int, default=0)
    up.set_defaults(func=_up)
