"""Liveness models on the GPU engines: latency per face and agreement with ONNX Runtime FP32.

Prints ONE JSON line. For each GPU engine available here (TensorRT FP16, Torch CUDA) and each model (the two
MiniFASNets, exported with their ``.pt2`` from ``--silent-face``; the shipped GhostNet-style demo model, which
has no ``.pt2``, so Torch CUDA reports an error for it): p50/p99 of one face (batch 1) and of a batch of 32, and
max |engine - ORT FP32|.
Without a GPU it prints why each engine cannot run (``available_engines``) and measures nothing.

    .venv/bin/python benchmarks/liveness_gpu.py [--silent-face DIR] [--runs 300]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.inference import OnnxRuntimeEngine, available_engines, create_engine
from edge_agent.vision import DEMO_MODEL, export_silent_face, read_silent_face

ROOT = Path(__file__).resolve().parents[1]


def timings(fn: Any, runs: int) -> dict[str, float]:
    for _ in range(20):
        fn()
    samples = []
    for _ in range(runs):
        t = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return {"p50_ms": float(np.percentile(samples, 50)), "p99_ms": float(np.percentile(samples, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--silent-face", type=Path, default=ROOT.parent / "shared" / "models" / "silent-face")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    reasons = available_engines()
    out: dict[str, Any] = {"benchmark": "liveness_gpu", "engines": {k: v or "available" for k, v in reasons.items()}}
    gpu = [k for k in ("tensorrt", "torch-cuda") if reasons.get(k) is None]
    if not gpu:
        out["note"] = "no GPU engine can run here: nothing measured"
        print(json.dumps(out))
        return
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        models: dict[str, tuple[Path, str, tuple[int, ...]]] = {"ghostnet_demo": (DEMO_MODEL, "input", (6, 64, 64))}
        if (args.silent_face / "2.7_80x80_MiniFASNetV2.pth").is_file():
            export_silent_face(args.silent_face, Path(tmp) / "pair")
            for m in read_silent_face(Path(tmp) / "pair")[0]:
                models[m.name] = (m.path, "input", (3, m.size, m.size))
        results: dict[str, Any] = {}
        for name, (path, feed, shape) in models.items():
            ref = OnnxRuntimeEngine(path, threads=1)
            for kind in gpu:
                try:
                    engine = (
                        create_engine(kind, path, cache_dir=Path(tmp) / "trt")
                        if kind == "tensorrt"
                        else create_engine(kind, path)
                    )  # type: ignore[arg-type]
                except Exception as exc:
                    results[f"{name}/{kind}"] = {"error": str(exc)}
                    continue
                one = rng.uniform(0, 1, (1, *shape)).astype(np.float32)
                many = rng.uniform(0, 1, (32, *shape)).astype(np.float32)
                got = next(iter(engine.run({feed: many}).values()))
                want = next(iter(ref.run({feed: many}).values()))
                results[f"{name}/{kind}"] = {
                    "precision": engine.info.precision,
                    "batch1": timings(lambda e=engine, x=one, f=feed: e.run({f: x}), args.runs),
                    "batch32": timings(lambda e=engine, x=many, f=feed: e.run({f: x}), max(20, args.runs // 5)),
                    "max_abs_diff_vs_ort_fp32": float(np.abs(np.asarray(got) - np.asarray(want)).max()),
                }
                engine.close()
            ref.close()
        out["results"] = results
    print(json.dumps(out))


if __name__ == "__main__":
    main()
