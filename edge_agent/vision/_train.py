"""Train the liveness CNN on a ``live/`` + ``spoof/`` dataset, report held-out metrics, export ONNX + metadata."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from edge_agent.vision._dataset import list_clips, read_dataset_info
from edge_agent.vision._features import ClipFeatures, featurize_clips, split_by_clip
from edge_agent.vision._metadata import METADATA_FORMAT, metadata_path, preprocessing_spec
from edge_agent.vision._metrics import pad_metrics
from edge_agent.vision._model import GhostLivenessNet, LiveProbability, count_parameters, estimate_flops
from edge_agent.vision._preprocess import CHANNELS
from edge_agent.vision._track import HistoryConfig

__all__ = ["TrainConfig", "TrainResult", "export_onnx", "train_liveness"]

_log = logging.getLogger(__name__)
INPUT_NAME = "input"
OUTPUT_NAME = "live_prob"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training settings; ``history``, ``input_size`` and ``crop_scale`` also bind the served pipeline."""

    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    held_out_fraction: float = 0.25
    history: int = 4
    input_size: int = 64
    crop_scale: float = 1.4
    width: float = 1.0
    #: The operating threshold written to the metadata (the seed's 0.98); metrics are reported at it.
    threshold: float = 0.98
    #: Mirror samples left-right at random (all channels together).
    flip: bool = True
    opset: int = 17
    #: Largest |ONNX Runtime - torch| allowed on the held-out inputs before the export is refused.
    onnx_atol: float = 1e-4


@dataclass(frozen=True, slots=True)
class TrainResult:
    """Where the model went, its metadata (as written), the held-out metrics and the trained torch model."""

    model_path: Path
    metadata_path: Path
    metadata: dict[str, Any]
    metrics: dict[str, Any]
    model: GhostLivenessNet


def _finite(obj: Any) -> Any:
    """NaN/inf → None, recursively (the metadata is strict JSON)."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _scores(model: GhostLivenessNet, inputs: NDArray[np.float32], batch: int = 256) -> NDArray[np.float32]:
    model.eval()
    with torch.no_grad():
        out = [
            model.probability(torch.from_numpy(inputs[i : i + batch])).numpy()[:, 0]
            for i in range(0, len(inputs), batch)
        ]
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _fit(model: GhostLivenessNet, data: ClipFeatures, cfg: TrainConfig, rng: np.random.Generator) -> list[float]:
    x_all, y_all = torch.from_numpy(data.inputs), torch.from_numpy(data.live.astype(np.float32))
    steps = cfg.epochs * max(1, -(-len(x_all) // cfg.batch_size))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.learning_rate, total_steps=steps, pct_start=0.2)
    n_live = float(data.live.sum())
    pos_weight = torch.tensor([(len(data.live) - n_live) / max(1.0, n_live)])
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    losses = []
    for _ in range(cfg.epochs):
        model.train()
        order = rng.permutation(len(x_all))
        total = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = torch.from_numpy(order[i : i + cfg.batch_size])
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            xb, yb = x_all[idx], y_all[idx]
            if cfg.flip:
                mirror = torch.from_numpy(rng.random(len(idx)) < 0.5)
                xb = torch.where(mirror[:, None, None, None], xb.flip(-1), xb)
            opt.zero_grad()
            loss = loss_fn(model(xb)[:, 0], yb)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / max(1, len(order)))
    model.eval()
    return losses


def _recalibrate_batchnorm(model: GhostLivenessNet, inputs: NDArray[np.float32], batch: int = 128) -> None:
    """Replace BatchNorm running statistics with exact averages over ``inputs`` (the final weights).

    After a short training run the exponential running averages still remember early weights; serving then
    sees shifted activations and badly calibrated probabilities. One pass in training mode with a cumulative
    average fixes that; nothing is learned from it.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for i in range(0, len(inputs), batch):
            chunk = inputs[i : i + batch]
            if len(chunk) > 1:
                model(torch.from_numpy(chunk))
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
    model.eval()


def export_onnx(model: GhostLivenessNet, path: Path, *, input_size: int, opset: int = 17) -> None:
    """Write ``model`` (with its sigmoid) as ONNX: input ``input`` ``(batch, C, S, S)``, output ``live_prob``."""
    # The exporter restores the wrapper's mode afterwards, recursively: a wrapper left in training mode would
    # switch ``model`` back to training (batch statistics) behind the caller's back.
    wrapper = LiveProbability(model).eval()
    example = torch.zeros(1, len(CHANNELS), input_size, input_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # onnxscript (needed by the torch.export-based exporter) is not a dependency: the TorchScript exporter
        # is used and announces its deprecation.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
            dynamo=False,
        )


def export_torch_program(model: GhostLivenessNet, onnx_path: Path, *, input_size: int) -> Path:
    """Write the ``.pt2`` beside the ONNX file, so the Torch CUDA engine serves the same model (without one it
    fell back to the CPU); same input/output names as the ONNX file."""
    from edge_agent.inference import save_torch_program

    wrapper = LiveProbability(model).eval()
    example = {INPUT_NAME: np.zeros((2, len(CHANNELS), input_size, input_size), np.float32)}  # batch 2: kept dynamic
    return save_torch_program(
        wrapper, example, onnx_path.with_suffix(".pt2"), output_names=[OUTPUT_NAME], max_batch=1024
    )


def _check_onnx(path: Path, model: GhostLivenessNet, inputs: NDArray[np.float32]) -> float:
    import onnx

    from edge_agent.inference import OnnxRuntimeEngine

    onnx.checker.check_model(onnx.load(str(path)))
    model.eval()
    engine = OnnxRuntimeEngine(path, threads=1)
    try:
        got = engine.run({INPUT_NAME: inputs})[OUTPUT_NAME]
    finally:
        engine.close()
    with torch.no_grad():
        want = model.probability(torch.from_numpy(inputs)).numpy()
    return float(np.max(np.abs(np.asarray(got, dtype=np.float32) - want)))


def train_liveness(
    dataset: Path,
    out: Path,
    *,
    rng: np.random.Generator,
    config: TrainConfig | None = None,
    synthetic: bool | None = None,
    seed: int | None = None,
    log: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train on ``dataset`` (``live/`` + ``spoof/``), write ``out`` (ONNX) and its metadata JSON beside it.

    Clips are split into train and held-out sets whole. ``synthetic`` defaults to what the dataset's
    ``dataset.json`` says (False when it has none); ``seed`` is only recorded.
    """
    cfg = config or TrainConfig()
    say = log or _log.info
    started = time.perf_counter()
    dataset, out = Path(dataset), Path(out)
    info = read_dataset_info(dataset) or {}
    is_synthetic = bool(info.get("synthetic", False)) if synthetic is None else synthetic
    clips = list_clips(dataset)
    train_ids, held_ids = split_by_clip(clips, cfg.held_out_fraction, rng)
    hist = HistoryConfig(history=cfg.history, input_size=cfg.input_size, crop_scale=cfg.crop_scale)
    features = featurize_clips(clips, hist)
    train, held = features.subset(train_ids), features.subset(held_ids)
    say(
        f"{len(clips)} clips, {features.frames} frames ({features.frames_without_face} without a face); "
        f"{len(train.live)} training and {len(held.live)} held-out samples"
    )
    for name, part in (("training", train), ("held-out", held)):
        if part.live.all() or not part.live.any():
            raise ValueError(f"the {name} set needs live and spoof samples with a detectable face")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(0, 2**62)))
        model = GhostLivenessNet(len(CHANNELS), width=cfg.width)
        losses = _fit(model, train, cfg, rng)
        _recalibrate_batchnorm(model, train.inputs)
    say(f"trained {cfg.epochs} epochs, loss {losses[0]:.4f} → {losses[-1]:.4f}")
    scores = _scores(model, held.inputs)
    metrics: dict[str, Any] = pad_metrics(scores, held.live, threshold=cfg.threshold, attack_types=held.attack_types())
    metrics.update(synthetic_data=is_synthetic, split="by clip", held_out_clips=len(held_ids), unit="frame window")
    export_onnx(model, out, input_size=cfg.input_size, opset=cfg.opset)
    diff = _check_onnx(out, model, held.inputs[:64])
    if diff > cfg.onnx_atol:
        raise RuntimeError(f"ONNX Runtime differs from torch by {diff:.2e} (> {cfg.onnx_atol:.0e})")
    program = export_torch_program(model, out, input_size=cfg.input_size)
    blob = out.read_bytes()
    sha = hashlib.sha256(blob).hexdigest()
    shape = (1, len(CHANNELS), cfg.input_size, cfg.input_size)
    metadata: dict[str, Any] = _finite(
        {
            "format": METADATA_FORMAT,
            "model_version": f"ghost-liveness-{sha[:12]}",
            "synthetic_data": is_synthetic,
            **({"synthetic_note": info.get("note", "trained on synthetic data")} if is_synthetic else {}),
            "onnx": {
                "file": out.name,
                "sha256": sha,
                "bytes": len(blob),
                "opset": cfg.opset,
                "input_name": INPUT_NAME,
                "output_name": OUTPUT_NAME,
            },
            "input_shape": ["batch", *shape[1:]],
            "output": f"{OUTPUT_NAME}: (batch, 1) float32 probability that the face is live (sigmoid)",
            "channel_layout": list(CHANNELS),
            "threshold": cfg.threshold,
            "preprocessing": preprocessing_spec(
                history=cfg.history, input_size=cfg.input_size, crop_scale=cfg.crop_scale
            ),
            "metrics": metrics,
            "onnx_check": {"max_abs_diff_vs_torch": diff, "atol": cfg.onnx_atol},
            "torch_program": {"file": program.name, "format": "torch.export", "for": "the torch-cuda engine"},
            "model": {
                "architecture": "GhostNet-style (Ghost modules + Ghost bottlenecks)",
                "width": cfg.width,
                "parameters": count_parameters(model),
                "flops": estimate_flops(model, shape),
            },
            "training": {
                **asdict(cfg),
                "seed": seed,
                "losses": losses,
                "train_clips": len(train_ids),
                "train_samples": len(train.live),
                "held_out_samples": len(held.live),
                "dataset": {
                    k: info[k]
                    for k in ("synthetic", "seed", "clips", "frames_per_clip", "frame_size", "source_images")
                    if k in info
                },
                "torch": torch.__version__,
                "seconds": round(time.perf_counter() - started, 1),
            },
        }
    )
    meta_path = metadata_path(out)
    meta_path.write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    say(f"wrote {out} and {meta_path}")
    return TrainResult(out, meta_path, metadata, metadata["metrics"], model)
