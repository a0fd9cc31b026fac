"""Shared-mask study: EMA + exploration vs random-k vs full updates, at 1 % and 10 % of the coordinates.

Prints ONE JSON line.

Federated DP-SGD (the default :class:`FlTrainingConfig`: 5 hospitals, Dirichlet 0.5 split of the breast-cancer
data, one DP policy for all, epsilon <= 8 at delta 1e-5 over the rounds) through the update codec without the
Paillier layer (error feedback, the round's shared mask, clipping with the clipping error kept in the residual,
stochastic quantisation; the keyholder's decrypted sum is exactly the sum of these integers, so encryption
changes nothing measured here). Two models: logistic regression (31 parameters) and a wider MLP
(``--hidden``, default 3300 units: 105 601 parameters). Per (model, mask, fraction, seed): final test accuracy,
coverage (share of coordinates sent at least once) and the longest any coordinate went unsent.

    .venv/bin/python benchmarks/fl_mask.py [--rounds 20] [--seeds 2] [--hidden 3300]
        [--standardise secure-sum|per-hospital|pooled]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from typing import Any

import numpy as np
import torch

from edge_agent.federated import FlTrainingConfig, build_trainer, load_federated_breast_cancer
from edge_agent.federated._client_core import quantize_update
from streams.federated import (
    EncodeSpec,
    ErrorFeedback,
    PackingSpec,
    QuantSpec,
    dequantize_sum,
    ema_explore_mask,
    random_k_mask,
    update_ema,
)

HOSPITALS = 5


def _run(
    cfg: FlTrainingConfig, kind: str, fraction: float, rounds: int, seed: int, *, on_validation: bool = False
) -> dict[str, float]:
    split = load_federated_breast_cancer(
        HOSPITALS, alpha=cfg.dirichlet_alpha, seed=seed, test_fraction=cfg.test_fraction,
        min_per_client=cfg.min_per_client,
        standardise=cfg.standardise, validation_fraction=cfg.validation_fraction,
    )  # fmt: skip
    test = (split.test.X, split.test.y)
    trainers = [
        build_trainer(cfg, h, test, rounds_planned=rounds, seed=seed * 1000 + i) for i, h in enumerate(split.hospitals)
    ]
    params = trainers[0].initial_params(seed)
    dim = params.size
    k = dim if kind == "full" else max(1, round(fraction * dim))
    max_gap = -(-4 * dim // k)
    spec = EncodeSpec(
        clip_norm=cfg.update_clip,
        quant=QuantSpec(bits=cfg.quant_bits, range=cfg.update_clip),
        packing=PackingSpec.maximal(bits=cfg.quant_bits, max_clients=HOSPITALS, key_bits=cfg.key_bits),
    )
    efs = [ErrorFeedback(dim) for _ in trainers]
    rngs = [np.random.default_rng([seed, 7, i]) for i in range(HOSPITALS)]
    ema = np.zeros(dim)
    last_seen, longest, seen = np.zeros(dim, dtype=np.int64), 0, np.zeros(dim, dtype=bool)
    total = split.train.n
    for r in range(1, rounds + 1):
        mask_seed = int(np.random.SeedSequence([seed, 0x3A5C, r]).generate_state(1)[0])
        if kind == "full":
            mask = np.arange(dim)
        elif kind == "random-k":
            mask = random_k_mask(dim, k, mask_seed)
        else:
            mask = ema_explore_mask(ema, k, round_id=r, seed=mask_seed, explore_fraction=0.25, max_gap=max_gap)
        q_sum = np.zeros(k, dtype=np.int64)
        for i, t in enumerate(trainers):
            res = t.train(params, r, rngs[i])
            q, _ = quantize_update(res.update * (HOSPITALS * res.num_examples / total), mask, efs[i], spec, rngs[i])
            q_sum += q
        mean = dequantize_sum(q_sum, spec.quant, HOSPITALS) / HOSPITALS
        delta = np.zeros(dim)
        delta[mask] = cfg.server_lr * mean
        params = params + delta
        ema = update_ema(ema, delta, 0.5, mask)
        seen[mask] = True
        longest = max(longest, int((r - last_seen).max()) - 1)
        last_seen[mask] = r
    longest = max(longest, int((rounds + 1 - last_seen).max()) - 1)
    if on_validation:  # the hospitals' held-out rows (standardised as the mode deploys the model)
        rows = [(v.X, v.y) for v in split.validation]
        X, y = np.concatenate([r[0] for r in rows]), np.concatenate([r[1] for r in rows])
        from edge_agent.federated import binary_metrics, load_flat, make_model

        model = make_model(X.shape[1], cfg.hidden)
        load_flat(model, params)
        accuracy = binary_metrics(model, X, y)["accuracy"]
    else:
        accuracy = trainers[0].evaluate(params)["accuracy"]
    return {
        "accuracy": accuracy,
        "coverage": float(seen.mean()),
        "longest_unsent": float(longest),
        "epsilon": trainers[0].epsilon,  # type: ignore[union-attr]
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=3300)
    ap.add_argument("--standardise", default=FlTrainingConfig().standardise)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.monotonic()
    out: dict[str, Any] = {"rounds": args.rounds, "hospitals": HOSPITALS, "seeds": args.seeds,
                           "standardise": args.standardise, "models": {}}  # fmt: skip
    for name, hidden in (("logreg", 0), (f"mlp{args.hidden}", args.hidden)):
        cfg = dataclasses.replace(FlTrainingConfig(), hidden=hidden, standardise=args.standardise)
        rows: dict[str, Any] = {}
        for kind, fraction in (("full", 1.0), ("random-k", 0.01), ("ema-explore", 0.01), ("random-k", 0.1),
                               ("ema-explore", 0.1)):  # fmt: skip
            runs = [_run(cfg, kind, fraction, args.rounds, seed) for seed in range(args.seeds)]
            keys = ("accuracy", "coverage", "longest_unsent")
            row = {key: round(statistics.mean(r[key] for r in runs), 4) for key in keys}
            row["accuracy_worst"] = round(min(r["accuracy"] for r in runs), 4)
            row["epsilon"] = round(max(r["epsilon"] for r in runs), 3)
            rows[f"{kind}@{fraction:g}"] = row
        params = build_trainer(cfg, load_federated_breast_cancer(HOSPITALS, alpha=0.5, seed=0).hospitals[0],
                               rounds_planned=1, seed=0).num_params  # fmt: skip
        out["models"][name] = {"params": params, "masks": rows}
    out["seconds"] = round(time.monotonic() - t0, 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
