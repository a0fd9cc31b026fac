"""Triage inference benchmark: the shipped knowledge-graph model on ONNX Runtime (1 intra-op thread).

Prints ONE JSON line:
  * ``batch1`` / ``batch32``: requests/s and latency p50/p99 (per call) through ``TriageService`` (encode,
    engine, red-flag rule, ranking) and for the bare engine call on pre-encoded input;
  * ``pool``: ``InferenceWorkerPool`` with 1 vs 2 workers (``max_batch`` 1 and 8), 32 closed-loop clients;
  * ``gpu_engines``: ``available_engines()``, i.e. why TensorRT / Torch CUDA were not run here.

Symptom sets are random (seeded) picks of 1-4 non-red-flag symptoms: synthetic requests.

    .venv/bin/python benchmarks/edge_triage.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_agent.inference import InferenceWorkerPool, OnnxRuntimeEngine, available_engines
from edge_agent.triage import MODELS_DIR, TriageService


def rounded(obj: Any) -> Any:
    if isinstance(obj, float):
        return float(f"{obj:.4g}")
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    return obj


def symptom_sets(svc: TriageService, n: int, rng: np.random.Generator) -> list[list[str]]:
    pool = [s for s in svc.vocab.symptoms if s not in svc.vocab.red_flags]
    return [list(rng.choice(pool, size=int(rng.integers(1, 5)), replace=False)) for _ in range(n)]


def timed_calls(fn: Callable[[int], object], calls: int, rows: int) -> dict[str, float]:
    lat = np.empty(calls)
    start = time.perf_counter()
    for i in range(calls):
        t = time.perf_counter()
        fn(i)
        lat[i] = time.perf_counter() - t
    total = time.perf_counter() - start
    return {
        "requests_per_s": calls * rows / total,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
    }


async def pool_run(engine: OnnxRuntimeEngine, x: np.ndarray, workers: int, max_batch: int, total: int) -> dict:
    clients = 32
    async with InferenceWorkerPool(engine, workers=workers, max_batch=max_batch, batch_window_s=0.0005) as pool:
        await asyncio.gather(*(pool.submit({"symptoms": x[i : i + 1]}) for i in range(64)))  # warm-up
        warm = pool.stats().completed
        counter = iter(range(total))

        async def client() -> None:
            for i in counter:
                await pool.submit({"symptoms": x[i % len(x) : i % len(x) + 1]})

        start = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
        stats = pool.stats()
    assert stats.completed - warm == total and stats.failed == 0
    return {
        "requests_per_s": total / elapsed,
        "p50_ms": stats.latency_p50_ms,
        "p99_ms": stats.latency_p99_ms,
        "mean_batch_rows": stats.mean_batch_rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests: a smoke run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n1, n32, npool = (300, 30, 1000) if args.quick else (3000, 300, 6000)
    rng = np.random.default_rng(args.seed)

    svc = TriageService.load(engine="onnxruntime", threads=1)
    sets = symptom_sets(svc, max(n1, 32 * n32), rng)
    x = svc.encode(sets)
    feed = svc.vocab.input_name
    for i in range(50):  # warm-up
        svc.assess(sets[i])
        svc.engine.run({feed: x[i : i + 1]})

    result: dict[str, Any] = {
        "model": svc.vocab.model_version,
        "engine": "onnxruntime",
        "threads": 1,
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "batch1": {
            "service": timed_calls(lambda i: svc.assess(sets[i]), n1, 1),
            "engine": timed_calls(lambda i: svc.engine.run({feed: x[i : i + 1]}), n1, 1),
        },
        "batch32": {
            "service": timed_calls(lambda i: svc.assess_batch(sets[32 * i : 32 * i + 32]), n32, 32),
            "engine": timed_calls(lambda i: svc.engine.run({feed: x[32 * i : 32 * i + 32]}), n32, 32),
        },
    }
    engine = OnnxRuntimeEngine(MODELS_DIR / svc.vocab.files["onnx"], threads=1)
    result["pool"] = {
        f"workers{w}_maxbatch{b}": asyncio.run(pool_run(engine, x, w, b, npool)) for b in (1, 8) for w in (1, 2)
    }
    result["gpu_engines"] = {k: v or "available" for k, v in available_engines().items() if k != "onnxruntime"}
    print(json.dumps(rounded(result)))


if __name__ == "__main__":
    main()
