"""Parser of ``medkiosk fl client``; the client (numpy, opacus) is imported only when it runs."""

from __future__ import annotations

import argparse

from streams._service_args import add_service_arguments, lazy_handler

__all__ = ["add_fl_client_command"]


def add_fl_client_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``medkiosk fl client``."""
    c = sub.add_parser(
        "client",
        help="a hospital's federated-learning client (trains locally, sends encrypted updates)",
        description="Reads fl.rounds.v1 and fl.models.v1; for every round it is invited to, trains the "
        "announced model version on this hospital's data, encodes the update (error feedback, shared mask, "
        "clipping, stochastic quantisation, packing, Paillier with precomputed obfuscators) and sends it, "
        "signed and chunked, to fl.updates.v1 through its durable outbox. Runs until SIGTERM.",
    )
    c.add_argument("--client-id", required=True, help="this client's producer id (registered with its hospital)")
    c.add_argument("--hospital", required=True, help="the hospital id the client belongs to")
    c.add_argument("--model", default="breast-cancer", help="model name (default breast-cancer)")
    c.add_argument(
        "--trainer",
        default="breast-cancer",
        help="'breast-cancer', 'multimodal' (the CT + report fusion head: --trainer-arg manifest=..., "
        "bundle=...) or MODULE:FACTORY (returns a LocalTrainer)",
    )
    c.add_argument("--trainer-arg", action="append", metavar="KEY=VALUE", help="factory argument (JSON value)")
    c.add_argument("--seed", type=int, default=0, help="unused: noise, sampling and rounding are keyed by the "
                   "client secret in the keys directory (fl keys export --role client)")  # fmt: skip
    c.add_argument("--hold-at", help=argparse.SUPPRESS)  # test hook: before_put|after_put:ROUND
    c.add_argument("--chunk-size", type=int, default=64 * 1024, help="bytes per update chunk")
    c.add_argument("--coordinator-id", default="fl-coordinator", help="producer allowed to announce rounds")
    c.add_argument("--models-id", default="fl-coordinator-models", help="producer allowed to publish models")
    c.add_argument("--topic-suffix", help="use the FL topics with this suffix (isolated runs)")
    add_service_arguments(c)
    c.set_defaults(func=lazy_handler("edge_agent.federated._client_cli:_client"))
