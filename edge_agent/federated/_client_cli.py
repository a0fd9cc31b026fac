"""``medkiosk fl client``: one hospital's federated-learning client as its own process."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
from typing import Any

from edge_agent._fl_client_cli import add_fl_client_command
from edge_agent.federated._client import ClientConfig, FlClient
from edge_agent.federated._trainer import LocalTrainer
from streams import FlTopics, configure_logging, run_until_stopped
from streams._service import periodic_stats, service_context
from streams.federated import PAILLIER_PUBLIC_FILE, load_public_key

__all__ = ["add_fl_client_command", "breast_cancer_trainer", "load_trainer"]


def breast_cancer_trainer(
    *,
    hospital_index: int,
    hospitals: int,
    rounds: int,
    seed: int = 0,
    private: bool = True,
    standardise: str | None = None,
) -> LocalTrainer:
    """Hospital ``hospital_index`` of the seeded non-IID (Dirichlet) split of sklearn's breast-cancer data,
    trained with DP-SGD (plain SGD when not ``private``) under the default ``FlTrainingConfig``.
    ``standardise`` (default: the config's): ``"secure-sum"`` keeps the rows raw until the statistics round's
    standardiser arrives with model version 0; ``"per-hospital"`` standardises with the hospital's own
    statistics (the test rows with theirs)."""
    from edge_agent.federated._config import FlTrainingConfig
    from edge_agent.federated._data import load_federated_breast_cancer
    from edge_agent.federated._local import build_trainer

    cfg = FlTrainingConfig()
    mode = standardise or cfg.standardise
    if mode not in ("secure-sum", "per-hospital"):
        raise ValueError(f"a hospital standardises 'secure-sum' or 'per-hospital', not {mode!r}")
    federated = mode == "secure-sum"  # raw rows here; the statistics round gives the federation's standardiser
    split = load_federated_breast_cancer(
        hospitals, alpha=cfg.dirichlet_alpha, seed=seed, test_fraction=cfg.test_fraction,
        min_per_client=cfg.min_per_client,
        standardise="none" if federated else mode, validation_fraction=cfg.validation_fraction,
    )  # fmt: skip
    return build_trainer(
        cfg,
        split.hospitals[hospital_index],
        (split.test.X, split.test.y),
        rounds_planned=max(rounds, 1),
        seed=seed * 1000 + hospital_index,
        private=private,
        raw_features=federated,
    )


def load_trainer(spec: str, kwargs: dict[str, Any]) -> LocalTrainer:
    """``breast-cancer``, ``multimodal`` or ``package.module:factory``, called with ``kwargs``."""
    if spec == "breast-cancer":
        return breast_cancer_trainer(**kwargs)
    if spec == "multimodal":  # the CT + report fusion head (edge_agent.federated._multimodal.multimodal_trainer)
        from edge_agent.federated._multimodal import multimodal_trainer

        return multimodal_trainer(**kwargs)
    module, sep, name = spec.partition(":")
    if not sep:
        raise SystemExit(f"--trainer takes 'breast-cancer', 'multimodal' or MODULE:FACTORY, got {spec!r}")
    factory = getattr(importlib.import_module(module), name)
    trainer: LocalTrainer = factory(**kwargs)
    return trainer


def _trainer_args(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--trainer-arg takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _client(args: argparse.Namespace) -> int:
    configure_logging()
    ctx = service_context(args, args.client_id)
    trainer = load_trainer(args.trainer, _trainer_args(args.trainer_arg))
    topics = FlTopics.suffixed(args.topic_suffix) if args.topic_suffix else FlTopics()
    client = FlClient(
        ClientConfig(
            client_id=args.client_id,
            hospital_id=args.hospital,
            model_name=args.model,
            topics=topics,
            coordinator_id=args.coordinator_id,
            models_id=args.models_id,
            chunk_size=args.chunk_size,
            hold_at=getattr(args, "hold_at", None),
        ),
        trainer,
        load_public_key(ctx.settings.keys_dir / PAILLIER_PUBLIC_FILE),
        ctx.settings,
        ctx.keyring,
        ctx.metrics,
    )

    async def main(stop: asyncio.Event) -> None:
        await client.start()
        async with periodic_stats(ctx.stats, client.stats):
            await client.run(stop)
            await client.stop()
        ctx.stats.write(client.stats())

    asyncio.run(run_until_stopped(main))
    return 0
