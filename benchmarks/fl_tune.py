"""How ``fl run``'s standardisation, mask fraction and learning rate were chosen: on validation rows only,
tuning seeds 0-4.

Prints ONE JSON line. Each hospital holds out 20 % of its rows (``validation_fraction``); the global model after
20 rounds (the fl run codec without the Paillier layer, DP policy at epsilon <= 8) is scored on those rows,
standardised as that mode deploys the model (``secure-sum``: the federation's statistics; ``per-hospital``: the
hospital's own); the test rows are never looked at. The held-out report is ``benchmarks/fl_seeds.py`` (seeds
100-104).

    .venv/bin/python benchmarks/fl_tune.py [--standardise secure-sum,per-hospital] [--fractions 0.1,0.3,0.5,1]
        [--lrs 0.5,1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time

import torch
from fl_mask import _run  # benchmarks/ is on sys.path when this file runs

from edge_agent.federated import FlTrainingConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--standardise", default="secure-sum,per-hospital")
    ap.add_argument("--fractions", default="0.1,0.3,0.5,1")
    ap.add_argument("--lrs", default="0.5,1")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.monotonic()
    grid = []
    for mode in args.standardise.split(","):
        for fraction in (float(f) for f in args.fractions.split(",")):
            for lr in (float(x) for x in args.lrs.split(",")):
                cfg = dataclasses.replace(FlTrainingConfig(), lr=lr, validation_fraction=0.2, standardise=mode)
                kind = "full" if fraction == 1.0 else "ema-explore"
                accs = [_run(cfg, kind, fraction, 20, seed, on_validation=True)["accuracy"] for seed in range(5)]
                grid.append({"standardise": mode, "mask_fraction": fraction, "lr": lr,
                             "val_mean": round(statistics.mean(accs), 4), "val_worst": round(min(accs), 4),
                             "val_per_seed": [round(a, 4) for a in accs]})  # fmt: skip
    best = max(grid, key=lambda g: (g["val_mean"], g["val_worst"]))
    print(json.dumps({"grid": grid, "best": best, "seconds": round(time.monotonic() - t0, 1)}), flush=True)


if __name__ == "__main__":
    main()
