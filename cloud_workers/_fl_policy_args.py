"""Arguments of the FL privacy policies (coordinator's DP policy, keyholder's own rules): light, argparse only."""

from __future__ import annotations

import argparse

__all__ = ["add_dp_policy_arguments", "add_keyholder_policy_arguments"]


def add_dp_policy_arguments(p: argparse.ArgumentParser) -> None:
    """The record-level DP-SGD policy the coordinator announces with every round."""
    g = p.add_argument_group(
        "DP policy announced with every round (hospitals must meet it; epsilon is computed from it)"
    )
    g.add_argument("--dp-noise-multiplier", type=float, default=0.0, help="least noise multiplier (0: no policy)")
    g.add_argument("--dp-max-sample-rate", type=float, default=1.0, help="largest Poisson sampling rate")
    g.add_argument("--dp-max-steps", type=int, default=1, help="most DP-SGD steps per round")
    g.add_argument("--dp-max-grad-norm", type=float, default=1.0, help="largest per-example clip norm")
    g.add_argument("--dp-delta", type=float, default=1e-5)


def add_keyholder_policy_arguments(p: argparse.ArgumentParser) -> None:
    """The keyholder's own policy: what it decrypts, whatever the coordinator announces."""
    g = p.add_argument_group("keyholder policy (its own, independent of the coordinator)")
    g.add_argument(
        "--min-contributors", type=int, default=3, help="fewest hospitals in a sum it decrypts (default 3, >= 2)"
    )
    g.add_argument("--max-epsilon", type=float, default=8.0, help="largest per-hospital epsilon it lets out")
    g.add_argument("--max-delta", type=float, default=1e-5, help="largest delta of an acceptable DP policy")
    g.add_argument("--min-noise-multiplier", type=float, default=0.0, help="least DP-SGD noise it accepts")
    g.add_argument(
        "--no-dp-required", action="store_true", help="decrypt rounds without a DP policy (non-private runs only)"
    )
