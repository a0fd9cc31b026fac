"""Face-liveness benchmark on the CPU: model inference per face, face detection, preprocessing, whole frame.

Prints ONE JSON line. Liveness inference is ONNX Runtime on the CPU with ONE intra-op thread, one face
(batch 1) per run (goal: p50 <= 5 ms). Face detection is the Haar cascade on generated frames at two sizes;
preprocessing is the face history (crop K frames + temporal channels); ``pipeline`` is
``LivenessPipeline.process`` on a whole frame. Inputs are SYNTHETIC frames (``render_clip``); the model's
held-out metrics are copied from its metadata and are SYNTHETIC figures when ``synthetic_data`` is true.

    .venv/bin/python benchmarks/edge_liveness.py [--model PATH] [--runs 500] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.inference import OnnxRuntimeEngine
from edge_agent.vision import (
    DEMO_MODEL,
    FaceDetector,
    FaceHistory,
    Frame,
    HistoryConfig,
    LivenessPipeline,
    build_input,
    crop_face,
    face_sources,
    load_model_info,
    render_clip,
)


def rounded(obj: Any) -> Any:
    """Floats to 4 significant digits, recursively, for a readable JSON line."""
    if isinstance(obj, float):
        return float(f"{obj:.4g}")
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v) for v in obj]
    return obj


def timings_ms(fn: Callable[[int], object], runs: int, warmup: int = 20) -> dict[str, float]:
    """p50/p99/mean of ``fn(i)`` in milliseconds."""
    for i in range(warmup):
        fn(i)
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter_ns()
        fn(i)
        samples[i] = (time.perf_counter_ns() - start) / 1e6
    return {
        "p50_ms": float(np.percentile(samples, 50)),
        "p99_ms": float(np.percentile(samples, 99)),
        "mean_ms": float(samples.mean()),
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=DEMO_MODEL)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test)")
    args = parser.parse_args()
    runs = 50 if args.quick else args.runs
    frame_runs = max(20, runs // 5)

    info = load_model_info(args.model)
    cfg = HistoryConfig(history=info.history, input_size=info.input_size, crop_scale=info.crop_scale)
    rng = np.random.default_rng(0)
    source = face_sources()[0]
    detector = FaceDetector()
    result: dict[str, Any] = {
        "model": args.model.name,
        "model_version": info.model_version,
        "model_bytes": args.model.stat().st_size,
        "parameters": info.raw["model"]["parameters"],
        "flops": info.raw["model"]["flops"],
        "input_shape": info.raw["input_shape"],
    }

    # Model inputs from real (synthetic) face histories.
    clip = render_clip("live", source, rng, frames=24)
    history = FaceHistory(cfg)
    inputs = [x for f in clip if (x := history.update(f, detector.largest(f))) is not None and history.full]
    engine = OnnxRuntimeEngine(args.model, threads=1)
    feeds = [{info.input_name: x[None]} for x in inputs]
    result["liveness_inference_ort_cpu_1thread"] = timings_ms(lambda i: engine.run(feeds[i % len(feeds)]), runs)

    for width, height in ((320, 240), (640, 480)):
        frames = render_clip("live", source, rng, frames=16, width=width, height=height)
        key = f"face_detection_{width}x{height}"
        result[key] = timings_ms(lambda i, fr=frames: detector.largest(fr[i % len(fr)]), frame_runs, warmup=3)

    boxes = [detector.largest(f) for f in clip]
    result["preprocess_history_update"] = timings_ms(
        lambda i: history.update(clip[i % len(clip)], boxes[i % len(clip)]), frame_runs
    )
    crops = [crop_face(f, boxes[0] or (100, 60, 120, 120), size=cfg.input_size) for f in clip[: cfg.history]]
    result["preprocess_temporal_channels_only"] = timings_ms(lambda i: build_input(crops), runs)

    pipe = LivenessPipeline(
        engine, history=cfg.history, input_size=cfg.input_size, crop_scale=cfg.crop_scale, detector=detector
    )
    stamped = [Frame(f, time.time_ns(), i, "bench") for i, f in enumerate(clip)]
    result["pipeline_per_frame_320x240"] = timings_ms(lambda i: pipe.process(stamped[i % len(stamped)]), frame_runs)

    result["goal_p50_ms"] = 5.0
    result["goal_met"] = result["liveness_inference_ort_cpu_1thread"]["p50_ms"] <= 5.0
    result["synthetic_data"] = info.synthetic_data
    label = "heldout_metrics_SYNTHETIC" if info.synthetic_data else "heldout_metrics"
    keep = ("accuracy", "apcer", "bpcer", "acer", "auc", "eer", "accuracy_at_0.5", "apcer_by_type", "threshold")
    result[label] = {k: info.metrics[k] for k in keep if k in info.metrics}
    result["heldout_samples"] = {k: info.metrics.get(k) for k in ("n_live", "n_attack", "held_out_clips")}
    import cv2
    import onnxruntime

    result["env"] = {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "onnxruntime": onnxruntime.__version__,
        "opencv": cv2.__version__,
        "opencv_threads": cv2.getNumThreads(),
    }
    print(json.dumps(rounded(result)))


if __name__ == "__main__":
    main()
