"""``medkiosk fl coordinator | aggregator | keyholder``: each cloud FL role as its own process."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cloud_workers.federated._aggregator import Aggregator
from cloud_workers.federated._coordinator import Coordinator
from cloud_workers.federated._coordinator_config import CoordinatorConfig
from cloud_workers.federated._keyholder import Keyholder
from cloud_workers.federated._role import FlIdentities, FlRole
from schemas import MaskKind, StragglerMode
from streams import BusSettings, FlTopics, StatsFile, configure_logging, run_until_stopped
from streams._service import add_service_arguments, periodic_stats, service_context
from streams.federated import PAILLIER_PRIVATE_FILE, PAILLIER_PUBLIC_FILE, key_id, load_private_key, load_public_key

__all__ = ["add_fl_role_commands"]


_STRAGGLER = {"drop": StragglerMode.STRAGGLER_MODE_DROP, "fold": StragglerMode.STRAGGLER_MODE_FOLD}


def _ids(args: argparse.Namespace) -> FlIdentities:
    return FlIdentities(
        coordinator=args.coordinator_id,
        models=args.models_id,
        aggregators=tuple(args.aggregator) if args.aggregator else None,
        keyholders=tuple(args.keyholder) if args.keyholder else None,
        aggregate_domain=args.aggregate_domain,
    )


def _topics(args: argparse.Namespace) -> FlTopics:
    return FlTopics.suffixed(args.topic_suffix) if args.topic_suffix else FlTopics()


def _run_role(role: FlRole, stats: StatsFile) -> None:
    async def main(stop: asyncio.Event) -> None:
        await role.start(stop)
        async with periodic_stats(stats, role.stats):
            try:
                await role.run(stop)
            finally:
                await role.stop()
        stats.write(role.stats())

    asyncio.run(run_until_stopped(main))


def _noise_seed(settings: BusSettings, coordinator_id: str, path: Path | None) -> int:
    """The coordinator's secret central-noise seed: from ``path``, else created once in its state dir."""
    target = path or settings.state_dir / coordinator_id / "noise_seed"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(str(secrets.randbits(63)))
    return int(target.read_text().strip())


def _initial_params(args: argparse.Namespace) -> NDArray[np.float64]:
    if args.init_params:
        return np.asarray(np.load(args.init_params), dtype=np.float64).ravel()
    if args.num_params:
        return np.zeros(args.num_params, dtype=np.float64)
    raise SystemExit("give --init-params FILE.npy or --num-params N")


def _coordinator(args: argparse.Namespace) -> int:
    configure_logging()
    ctx = service_context(args, args.coordinator_id)
    pub = load_public_key(ctx.settings.keys_dir / PAILLIER_PUBLIC_FILE)
    clients = [c for group in args.client for c in group.split(",") if c]
    config = CoordinatorConfig(
        model_name=args.model,
        rounds=args.rounds,
        invited=tuple(clients),
        min_clients=args.min_clients,
        paillier_key_id=key_id(pub),
        key_bits=int(pub.n).bit_length(),
        deadline_s=args.deadline,
        clip_norm=args.clip_norm,
        quant_bits=args.quant_bits,
        quant_range=args.quant_range,
        mask_kind=MaskKind.MASK_KIND_TOP_K_PREVIOUS if args.mask == "top-k" else MaskKind.MASK_KIND_RANDOM_K,
        mask_fraction=args.mask_fraction,
        num_shards=args.shards,
        straggler_mode=_STRAGGLER[args.straggler],
        staleness_alpha=args.staleness_alpha,
        max_staleness=args.max_staleness,
        client_noise_std=args.client_noise_std,
        example_scale=args.example_scale,
        server_lr=args.server_lr,
        central_noise_multiplier=args.central_noise,
        central_delta=args.central_delta,
        noise_seed=_noise_seed(ctx.settings, args.coordinator_id, args.noise_seed_file) if args.central_noise else 0,
        seed=args.seed,
    )
    role = Coordinator(
        config,
        _initial_params(args),
        ctx.settings,
        ctx.keyring,
        ctx.metrics,
        topics=_topics(args),
        ids=_ids(args),
        hold_at=args.hold_at,
    )
    _run_role(role, ctx.stats)
    return 0 if role.state.finished else 1


def _aggregator(args: argparse.Namespace) -> int:
    configure_logging()
    ctx = service_context(args, args.aggregator_id)
    try:
        role = Aggregator(
            args.model,
            args.aggregator_id,
            load_public_key(ctx.settings.keys_dir / PAILLIER_PUBLIC_FILE),
            ctx.settings,
            ctx.keyring,
            ctx.metrics,
            instance=args.instance,
            instances=args.instances,
            topics=_topics(args),
            ids=_ids(args),
            hold_at=args.hold_at,
        )
    except RuntimeError as exc:
        raise SystemExit(f"fl aggregator: {exc}") from None
    _run_role(role, ctx.stats)
    return 0


def _keyholder(args: argparse.Namespace) -> int:
    configure_logging()
    ctx = service_context(args, args.keyholder_id)
    role = Keyholder(
        args.model,
        args.keyholder_id,
        load_private_key(ctx.settings.keys_dir / PAILLIER_PRIVATE_FILE),
        ctx.settings,
        ctx.keyring,
        ctx.metrics,
        topics=_topics(args),
        ids=_ids(args),
        hold_at=args.hold_at,
    )
    _run_role(role, ctx.stats)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default="breast-cancer", help="model name (default breast-cancer)")
    p.add_argument("--coordinator-id", default="fl-coordinator", help="producer of round announcements")
    p.add_argument("--models-id", default="fl-coordinator-models", help="producer of model versions")
    p.add_argument("--aggregator", action="append", metavar="ID", help="allowed aggregator (default: any service)")
    p.add_argument("--keyholder", action="append", metavar="ID", help="allowed keyholder (default: any service)")
    p.add_argument("--aggregate-domain", default="fl", help="data-key domain of decrypted aggregates (default fl)")
    p.add_argument("--topic-suffix", help="use the FL topics with this suffix (isolated runs)")
    p.add_argument("--hold-at", help=argparse.SUPPRESS)  # test hook: POINT:ROUND
    add_service_arguments(p)


def add_fl_role_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``medkiosk fl coordinator|aggregator|keyholder``."""
    c = sub.add_parser(
        "coordinator",
        help="announce rounds, close them at quorum + deadline, apply aggregates, publish models",
        description="Announces each round on fl.rounds.v1 (invited clients, min_clients, deadline, clipping, "
        "quantisation, shared mask, Paillier key id, start offsets), closes it once min_clients complete "
        "updates are in and the deadline has passed (or all invited are in), applies the keyholder's "
        "aggregate (optionally with central Gaussian noise) and publishes the model version, chunked, on "
        "fl.models.v1 with the privacy spent. Exits 0 after --rounds rounds.",
    )
    c.add_argument("--rounds", type=int, default=20)
    c.add_argument("--client", action="append", required=True, metavar="ID[,ID...]", help="invited client(s)")
    c.add_argument("--min-clients", type=int, default=2)
    c.add_argument("--deadline", type=float, default=30.0, help="seconds after the announcement (default 30)")
    c.add_argument("--init-params", type=Path, help="initial parameters (.npy, flat float64)")
    c.add_argument("--num-params", type=int, help="start from zeros of this length instead")
    c.add_argument("--clip-norm", type=float, default=5.0)
    c.add_argument("--quant-bits", type=int, default=16)
    c.add_argument("--quant-range", type=float, help="default: the clip norm")
    c.add_argument("--mask", choices=["random-k", "top-k"], default="random-k")
    c.add_argument("--mask-fraction", type=float, default=1.0, help="share of coordinates sent per round")
    c.add_argument("--shards", type=int, default=1, help="shards per update (aggregation scales out by shard)")
    c.add_argument("--straggler", choices=["drop", "fold"], default="drop", help="late updates: drop or fold")
    c.add_argument("--staleness-alpha", type=float, default=0.5, help="fold weight (1 + staleness)^-alpha")
    c.add_argument("--max-staleness", type=int, default=2)
    c.add_argument("--client-noise-std", type=float, default=0.0, help="per-client noise share (distributed DP)")
    c.add_argument("--example-scale", type=float, default=0.0, help="clients weigh num_examples / this (0: 1)")
    c.add_argument("--server-lr", type=float, default=1.0)
    c.add_argument("--central-noise", type=float, default=0.0, help="central noise multiplier on the sum (0: off)")
    c.add_argument("--central-delta", type=float, default=1e-5)
    c.add_argument("--noise-seed-file", type=Path, help="secret seed of the central noise")
    c.add_argument("--seed", type=int, default=0, help="seed of the round masks")
    _common(c)
    c.set_defaults(func=_coordinator)

    a = sub.add_parser(
        "aggregator",
        help="add encrypted updates per shard (public key only)",
        description="Verifies and deduplicates updates on fl.updates.v1, receipts them on fl.sums.v1, and once "
        "the round is closed publishes per shard the homomorphic sum of exactly the listed updates with "
        "references to their signed envelopes. Holds only the Paillier public key (refuses to start with "
        "a private key in its keys directory).",
    )
    a.add_argument("--aggregator-id", default="fl-aggregator-0", help="this aggregator's producer id")
    a.add_argument("--instance", type=int, default=0, help="this instance (reads partitions p %% n == i)")
    a.add_argument("--instances", type=int, default=1)
    _common(a)
    a.set_defaults(func=_aggregator)

    k = sub.add_parser(
        "keyholder",
        help="decrypt verified round sums (private key)",
        description="Decrypts an encrypted sum only if it is the product of at least min_clients distinct, "
        "validly signed updates of that round from distinct hospitals, exactly those the coordinator's "
        "close lists (it reads every referenced envelope back from the log and re-adds the ciphertexts); "
        "publishes the dequantised shard sum, encrypted for the coordinator, on fl.aggregates.v1.",
    )
    k.add_argument("--keyholder-id", default="fl-keyholder", help="this keyholder's producer id")
    _common(k)
    k.set_defaults(func=_keyholder)
