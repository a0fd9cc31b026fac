"""DP-SGD cost and federated utility: Opacus step time vs plain SGD, and the tuned 5-hospital × 20-round run.

Prints ONE JSON line.

``step``: one optimizer step (zero_grad, forward, loss, backward, step) of the configured model on the SAME
fixed batch of breast-cancer training rows, plain ``torch.optim.SGD`` vs the Opacus-wrapped model and
DPOptimizer exactly as :class:`~edge_agent.federated.DpSgdTrainer` builds them (per-sample gradients by hooks,
flat clipping, Gaussian noise, RDP accountant hook). Per-step medians over interleaved repeats, 1 torch thread;
``ratio_by_batch`` repeats it at larger batches. ``round``: one local round (``train``) of the largest hospital,
DpSgdTrainer (Poisson sampling, accounting) vs NonPrivateTrainer. ``fl``: :func:`simulate` with the default
:class:`FlTrainingConfig` (through the wire codec unless ``--no-codec``) against :func:`centralized_baseline`
on the same test rows, for ``--seeds`` seeds; the goal is a gap <= 5 points at epsilon <= 8, delta = 1e-5.

    .venv/bin/python benchmarks/dp_step.py [--quick] [--no-codec] [--seeds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from edge_agent.federated import (
    DpSgdTrainer,
    FlTrainingConfig,
    NonPrivateTrainer,
    centralized_baseline,
    load_breast_cancer_split,
    load_federated_breast_cancer,
    make_model,
    num_params,
    simulate,
)

RATIO_GOAL = 3.0
GAP_GOAL_POINTS = 5.0
EPSILON_GOAL = 8.0


def rounded(obj: Any) -> Any:
    """Floats to 5 significant digits, recursively, for a readable JSON line (epsilons stay visibly <= 8)."""
    if isinstance(obj, float):
        return float(f"{obj:.5g}")
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


def sgd_step(X: torch.Tensor, y: torch.Tensor, hidden: int, lr: float) -> Callable[[], None]:
    model = make_model(X.shape[1], hidden, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.BCEWithLogitsLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(model(X).reshape(-1), y).backward()
        opt.step()

    return step


def dp_step(X: torch.Tensor, y: torch.Tensor, hidden: int, cfg: FlTrainingConfig) -> Callable[[], None]:
    from opacus import PrivacyEngine

    model = make_model(X.shape[1], hidden, seed=0)
    engine = PrivacyEngine(accountant="rdp", secure_mode=False)
    gsm, opt, _ = engine.make_private(
        module=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=cfg.lr),
        data_loader=DataLoader(TensorDataset(X, y), batch_size=X.shape[0]),
        noise_multiplier=1.0,
        max_grad_norm=cfg.max_grad_norm,
        poisson_sampling=True,
        noise_generator=torch.Generator().manual_seed(0),
    )
    loss_fn = nn.BCEWithLogitsLoss()

    def step() -> None:
        opt.zero_grad()
        loss_fn(gsm(X).reshape(-1), y).backward()
        opt.step()

    return step


def per_step_us(fns: dict[str, Callable[[], None]], steps: int, repeats: int) -> dict[str, float]:
    """Median per-step microseconds of each function, repeats interleaved so drift hits all alike."""
    for fn in fns.values():
        for _ in range(50):
            fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            samples[name].append((time.perf_counter() - start) / steps * 1e6)
    return {k: statistics.median(v) for k, v in samples.items()}


def step_benchmark(cfg: FlTrainingConfig, batches: list[int], steps: int, repeats: int) -> dict[str, Any]:
    train, _ = load_breast_cancer_split(0)
    X_all = torch.as_tensor(train.X, dtype=torch.float32)
    y_all = torch.as_tensor(train.y, dtype=torch.float32)
    by_batch: dict[str, Any] = {}
    for b in batches:
        X, y = X_all[:b], y_all[:b]
        t = per_step_us(
            {"sgd": sgd_step(X, y, cfg.hidden, cfg.lr), "dp_sgd": dp_step(X, y, cfg.hidden, cfg)}, steps, repeats
        )
        by_batch[str(b)] = {"sgd_us": t["sgd"], "dp_sgd_us": t["dp_sgd"], "ratio": t["dp_sgd"] / t["sgd"]}
    main = by_batch[str(batches[0])]
    return {
        "batch": batches[0],
        "sgd_us": main["sgd_us"],
        "dp_sgd_us": main["dp_sgd_us"],
        "ratio": main["ratio"],
        "ratio_goal": RATIO_GOAL,
        "ratio_ok": main["ratio"] <= RATIO_GOAL,
        "ratio_by_batch": {k: v["ratio"] for k, v in by_batch.items()},
        "dp_sgd_us_by_batch": {k: v["dp_sgd_us"] for k, v in by_batch.items()},
    }


def round_benchmark(cfg: FlTrainingConfig, repeats: int) -> dict[str, Any]:
    split = load_federated_breast_cancer(5, alpha=cfg.dirichlet_alpha, seed=0, min_per_client=cfg.min_per_client)
    data = max(split.hospitals, key=lambda h: h.n)
    kw: dict[str, Any] = {"epochs": cfg.local_epochs, "batch_size": cfg.batch_size, "lr": cfg.lr, "hidden": cfg.hidden}
    dp = DpSgdTrainer(data, noise_multiplier=1.0, max_grad_norm=cfg.max_grad_norm, **kw)
    plain = NonPrivateTrainer(data, **kw)
    params = dp.initial_params(0)
    out: dict[str, list[float]] = {"sgd": [], "dp_sgd": []}
    rng = np.random.default_rng(0)
    for r in range(repeats + 1):
        for name, trainer in (("sgd", plain), ("dp_sgd", dp)):
            start = time.perf_counter()
            trainer.train(params, r, rng)
            if r:  # the first round warms up (and fills the accounting cache)
                out[name].append((time.perf_counter() - start) * 1e3)
    med = {k: statistics.median(v) for k, v in out.items()}
    return {
        "examples": data.n,
        "steps": dp.steps_per_round,
        "sgd_ms": med["sgd"],
        "dp_sgd_ms": med["dp_sgd"],
        "ratio": med["dp_sgd"] / med["sgd"],
    }


def fl_benchmark(cfg: FlTrainingConfig, seeds: list[int], codec: bool, hospitals: int, rounds: int) -> dict[str, Any]:
    per_seed = []
    for s in seeds:
        central = centralized_baseline(s, cfg)
        result = simulate(hospitals, rounds, cfg, s, use_codec=codec)
        per_seed.append(
            {
                "seed": s,
                "final_accuracy": result.final_accuracy,
                "centralized_accuracy": central,
                "gap_points": (central - result.final_accuracy) * 100,
                "epsilon": result.final_epsilon,
                "initial_accuracy": result.initial["accuracy"],
                "final_auc": result.rounds[-1].auc,
            }
        )
    gaps = [p["gap_points"] for p in per_seed]
    eps = max(p["epsilon"] for p in per_seed)
    return {
        "hospitals": hospitals,
        "rounds": rounds,
        "dirichlet_alpha": cfg.dirichlet_alpha,
        "codec": codec,
        "key_bits": cfg.key_bits if codec else None,
        "seeds": len(seeds),
        "final_accuracy": statistics.fmean(p["final_accuracy"] for p in per_seed),
        "centralized_accuracy": statistics.fmean(p["centralized_accuracy"] for p in per_seed),
        "gap_points": statistics.fmean(gaps),
        "gap_points_worst": max(gaps),
        "epsilon": eps,
        "delta": cfg.delta,
        "goal_met": max(gaps) <= GAP_GOAL_POINTS and eps <= EPSILON_GOAL,
        "seed0": per_seed[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, 1 seed, 5 rounds: a smoke run")
    parser.add_argument("--no-codec", dest="codec", action="store_false", help="plain weighted mean, no wire codec")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--hospitals", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    steps, repeats = (200, 3) if args.quick else (2000, 7)
    if args.quick:
        args.seeds, args.rounds = 1, 5

    torch.set_num_threads(1)
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]
    cfg = FlTrainingConfig()
    with warnings.catch_warnings():
        # opacus: no CSPRNG without torchcsprng (fine here); torch: hooks on modules whose inputs need no grad
        warnings.filterwarnings("ignore", message="Secure RNG turned off")
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        step = step_benchmark(cfg, [cfg.batch_size, 64, 256], steps, repeats)
        rnd = round_benchmark(cfg, repeats)
        fl = fl_benchmark(cfg, list(range(args.seeds)), args.codec, args.hospitals, args.rounds)
    result = {
        "benchmark": "dp_step",
        "quick": args.quick,
        "model_params": num_params(make_model(30, cfg.hidden)),
        "torch_threads": 1,
        "step": step,
        "round": rnd,
        "fl": fl,
        "config": dataclasses.asdict(cfg),
        "cpu_count": os.cpu_count(),
        "loadavg_1min_at_start": load_at_start,
        "total_s": time.perf_counter() - started,
    }
    print(json.dumps(rounded(result)))


if __name__ == "__main__":
    main()
