"""``medkiosk fl coordinator | aggregator | keyholder``: each cloud FL role as its own process."""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from cloud_workers._fl_cli import add_fl_role_commands
from cloud_workers.federated._aggregator import Aggregator
from cloud_workers.federated._coordinator import Coordinator
from cloud_workers.federated._coordinator_config import CoordinatorConfig
from cloud_workers.federated._keyholder import Keyholder
from cloud_workers.federated._keyholder_policy import KeyholderPolicy
from cloud_workers.federated._role import FlIdentities, FlRole
from schemas import MaskKind, StragglerMode
from streams import BusSettings, FlTopics, StatsFile, configure_logging, run_until_stopped
from streams._service import periodic_stats, service_context
from streams.federated import PAILLIER_PRIVATE_FILE, PAILLIER_PUBLIC_FILE, key_id, load_private_key, load_public_key

__all__ = ["add_fl_role_commands"]

# The parsers live in cloud_workers._fl_cli (registering them needs none of numpy, phe or gmpy2).


_MASKS = {
    "random-k": MaskKind.MASK_KIND_RANDOM_K,
    "top-k": MaskKind.MASK_KIND_TOP_K_PREVIOUS,
    "ema-explore": MaskKind.MASK_KIND_EMA_EXPLORE,
}
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
        mask_kind=_MASKS[args.mask],
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
        dp_noise_multiplier=args.dp_noise_multiplier,
        dp_max_sample_rate=args.dp_max_sample_rate,
        dp_max_steps_per_round=args.dp_max_steps,
        dp_max_grad_norm=args.dp_max_grad_norm,
        dp_delta=args.dp_delta,
        stats_features=args.stats_features,
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
        policy=KeyholderPolicy(
            min_contributors=args.min_contributors,
            require_dp=not args.no_dp_required,
            min_noise_multiplier=args.min_noise_multiplier,
            max_delta=args.max_delta,
            max_epsilon=args.max_epsilon,
        ),
    )
    _run_role(role, ctx.stats)
    return 0
