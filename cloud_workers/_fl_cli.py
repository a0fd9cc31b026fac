"""Parsers of ``medkiosk fl coordinator | aggregator | keyholder``; the roles are imported only when one runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from cloud_workers._fl_policy_args import add_dp_policy_arguments, add_keyholder_policy_arguments
from streams._service_args import add_service_arguments, lazy_handler

__all__ = ["add_fl_role_commands"]


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
    c.add_argument("--mask", choices=["random-k", "top-k", "ema-explore"], default="ema-explore")
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
    c.add_argument(
        "--stats-features",
        type=int,
        default=0,
        metavar="D",
        help="first run the statistics round over D features: the hospitals' counts, feature sums and sums of "
        "squares, securely aggregated, give everyone the federation's standardiser with model version 0 "
        "(0: no statistics round)",
    )
    add_dp_policy_arguments(c)
    _common(c)
    c.set_defaults(func=lazy_handler("cloud_workers.federated._cli:_coordinator"))

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
    a.set_defaults(func=lazy_handler("cloud_workers.federated._cli:_aggregator"))

    k = sub.add_parser(
        "keyholder",
        help="decrypt verified round sums (private key)",
        description="Decrypts an encrypted sum only if it is the product of at least min_clients distinct, "
        "validly signed updates of that round from distinct hospitals, exactly those the coordinator's "
        "close lists (it reads every referenced envelope back from the log and re-adds the ciphertexts); "
        "publishes the dequantised shard sum, encrypted for the coordinator, on fl.aggregates.v1.",
    )
    k.add_argument("--keyholder-id", default="fl-keyholder", help="this keyholder's producer id")
    add_keyholder_policy_arguments(k)
    _common(k)
    k.set_defaults(func=lazy_handler("cloud_workers.federated._cli:_keyholder"))
