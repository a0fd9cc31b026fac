"""``medkiosk fl ...``: the federated-learning command group (``run`` and each role)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

__all__ = ["add_fl_commands"]


def _run(args: argparse.Namespace) -> int:
    import signal
    import sys

    from medkiosk._fl import FlRunOptions, run_fl

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so run_fl's cleanup stops every role it started
    if args.hospitals < 2 or (args.min_clients is not None and args.min_clients < 2):
        raise SystemExit("fl run: federated learning needs at least 2 hospitals and min_clients >= 2")
    result = run_fl(
        FlRunOptions(
            hospitals=args.hospitals,
            rounds=args.rounds,
            bootstrap=args.bootstrap,
            storage=args.storage,
            state_dir=args.state_dir,
            key_bits=args.key_bits,
            min_clients=args.min_clients,
            deadline_s=args.deadline,
            straggler=args.straggler,
            mask_fraction=args.mask_fraction,
            shards=args.shards,
            central_noise=args.central_noise,
            private=not args.non_private,
            seed=args.seed,
            plot=args.plot,
            standardise=args.standardise,
        )
    )
    print(json.dumps(result.summary), flush=True)
    return 0 if result.summary["rounds"] == args.rounds else 1


def add_fl_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``medkiosk fl run|coordinator|aggregator|keyholder|client``."""
    from cloud_workers._fl_cli import add_fl_role_commands
    from edge_agent._fl_client_cli import add_fl_client_command

    fl = sub.add_parser("fl", help="federated learning: a whole training run, or one role")
    flsub = fl.add_subparsers(dest="fl_command", required=True, metavar="COMMAND")
    run = flsub.add_parser(
        "run",
        help="train a classifier across simulated hospitals, every role its own process",
        description="Trains a classifier on sklearn's breast-cancer data split non-IID (seeded Dirichlet) across "
        "--hospitals hospitals with DP-SGD, packed Paillier secure aggregation, a keyholder and a coordinator, "
        "each its own process on the embedded broker (unless --bootstrap). Prints per-round progress, writes a "
        'PNG of accuracy and ε per round, and ends with one JSON line: {"rounds", "accuracy", '
        '"centralized_accuracy", "epsilon", "delta", "bytes_per_update", "round_s_p50"}.',
    )
    run.add_argument("--hospitals", type=int, default=5)
    run.add_argument("--rounds", type=int, default=20)
    run.add_argument("--bootstrap", help="use this Kafka cluster instead of the embedded broker")
    run.add_argument("--storage", choices=["memory", "s3"], default="memory", help="embedded broker storage")
    run.add_argument("--state-dir", type=Path, default=Path(".medkiosk"), help="keys, outboxes, logs, plot")
    run.add_argument("--key-bits", type=int, default=2048, help="Paillier modulus size (default 2048)")
    run.add_argument("--min-clients", type=int, help="quorum per round (default min(3, hospitals))")
    run.add_argument("--deadline", type=float, default=30.0, help="seconds a round waits for stragglers")
    run.add_argument("--straggler", choices=["drop", "fold"], default="drop")
    run.add_argument(
        "--mask-fraction",
        type=float,
        default=0.5,
        help="share of coordinates sent per round (default 0.5, EMA + exploration mask; chosen on validation rows)",
    )
    run.add_argument("--shards", type=int, default=1)
    run.add_argument("--central-noise", type=float, default=0.0, help="central noise multiplier (0: off)")
    run.add_argument("--non-private", action="store_true", help="plain SGD at the hospitals instead of DP-SGD")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument(
        "--standardise",
        choices=["secure-sum", "per-hospital"],
        default="secure-sum",
        help="features: the federation's mean/std from the secure-sum statistics round (default), or each "
        "hospital's own",
    )
    run.add_argument("--plot", type=Path, help="PNG path (default <state-dir>/fl/fl_run.png)")
    run.set_defaults(func=_run)
    add_fl_role_commands(flsub)
    add_fl_client_command(flsub)
    _add_fl_keys_commands(flsub)
    _add_fl_privacy_report_command(flsub)


def _fl_privacy_report(args: argparse.Namespace) -> int:
    from medkiosk._fl_report import fl_privacy_report

    return fl_privacy_report(args)


def _add_fl_privacy_report_command(flsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from streams._service_args import add_service_arguments

    rep = flsub.add_parser(
        "privacy-report",
        help="recompute every published epsilon from the log (announced policies, closes, model versions)",
        description="Reads fl.rounds.v1 and fl.models.v1 and, per model version, recomputes each hospital's "
        "record-level epsilon from the announced DP policies of the rounds it contributed to, and the client-level "
        "epsilon of the noise on the sums; checks that every published figure is at least that and follows from "
        "the accountant history it publishes. One JSON line; exit 1 if a figure does not hold up.",
    )
    rep.add_argument("--model", default="breast-cancer")
    rep.add_argument("--coordinator-id", default="fl-coordinator")
    rep.add_argument("--models-id", default="fl-coordinator-models")
    rep.add_argument("--topic-suffix", help="the FL topics with this suffix")
    add_service_arguments(rep)
    rep.set_defaults(func=_fl_privacy_report)


def _fl_keys_init(args: argparse.Namespace) -> int:
    import json

    from cloud_workers.federated._keys import init_fl_keys
    from medkiosk._fl import AGGREGATOR, COORDINATOR, KEYHOLDER, MODELS

    clients: dict[str, str] = {}
    for spec in args.client:
        cid, sep, hospital = spec.partition("=")
        if not sep:
            raise SystemExit(f"--client takes CLIENT_ID=HOSPITAL_ID, got {spec!r}")
        clients[cid] = hospital
    created = init_fl_keys(
        args.dir, clients=clients, services=[COORDINATOR, MODELS, AGGREGATOR, KEYHOLDER], key_bits=args.key_bits
    )
    print(json.dumps({"keys_dir": str(args.dir), "created": created}))
    return 0


def _fl_keys_export(args: argparse.Namespace) -> int:
    import json

    from cloud_workers.federated._keys import export_fl_role
    from medkiosk._fl import AGGREGATOR, COORDINATOR, KEYHOLDER, MODELS

    if args.role == "client" and not args.client_id:
        raise SystemExit("--role client needs --client-id")
    shares = {
        "coordinator": {"producers": [COORDINATOR, MODELS], "domains": ["fl"]},
        "aggregator": {"producers": [AGGREGATOR]},
        "keyholder": {"producers": [KEYHOLDER], "domains": ["fl"], "private_key": True},
        "client": {"producers": [args.client_id], "client_secret": True},
        "observer": {},
    }
    export_fl_role(args.dir, args.out, **shares[args.role])  # type: ignore[arg-type]
    print(json.dumps({"role": args.role, "exported_to": str(args.out)}))
    return 0


def _add_fl_keys_commands(flsub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = flsub.add_parser("keys", help="make the federated-learning keys and give each role its share")
    ksub = keys.add_subparsers(dest="fl_keys_command", required=True)
    init = ksub.add_parser(
        "init",
        help="signing keys for every role and client, the `fl` data key, and a Paillier key pair",
        description="Run once, on a trusted machine; then `fl keys export` each role's share to its machine.",
    )
    init.add_argument("--dir", type=Path, required=True, help="master keys directory (never copied whole)")
    init.add_argument("--client", action="append", required=True, metavar="CLIENT=HOSPITAL", help="repeatable")
    init.add_argument("--key-bits", type=int, default=2048, help="Paillier modulus size")
    init.set_defaults(func=_fl_keys_init)
    export = ksub.add_parser(
        "export",
        help="copy one role's share of the keys into a directory for its machine",
        description="coordinator: its signing keys + the `fl` data key; aggregator: its signing key + the "
        "Paillier PUBLIC key; keyholder: its signing key, the `fl` data key and the Paillier PRIVATE key; "
        "client: its signing key + the Paillier public key. Every role also gets the registry and public keys.",
    )
    export.add_argument("--dir", type=Path, required=True, help="master keys directory")
    export.add_argument(
        "--role", choices=["coordinator", "aggregator", "keyholder", "client", "observer"], required=True
    )
    export.add_argument("--client-id", help="with --role client")
    export.add_argument("--out", type=Path, required=True, help="destination (replaced)")
    export.set_defaults(func=_fl_keys_export)
