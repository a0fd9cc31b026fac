"""The JSON written beside each liveness ONNX model, and its check at load time."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import edge_agent.vision._preprocess as pp

__all__ = [
    "DEMO_MODEL",
    "METADATA_FORMAT",
    "LivenessModelInfo",
    "load_model_info",
    "metadata_path",
    "preprocessing_spec",
]

METADATA_FORMAT = "medkiosk.liveness/1"
#: The demo model shipped with the package (trained on SYNTHETIC data; see its JSON).
DEMO_MODEL = Path(__file__).resolve().parent / "models" / "liveness-demo.onnx"


def metadata_path(model_path: Path) -> Path:
    """``models/x.onnx`` → ``models/x.json``."""
    return Path(model_path).with_suffix(".json")


def preprocessing_spec(*, history: int, input_size: int, crop_scale: float) -> dict[str, Any]:
    """Everything that must be the same at training and serving time, as recorded in the metadata."""
    return {
        "history": history,
        "input_size": input_size,
        "crop_scale": crop_scale,
        "channels": list(pp.CHANNELS),
        "motion_gain": pp.MOTION_GAIN,
        "residual_gain": pp.RESIDUAL_GAIN,
        "flicker_gain": pp.FLICKER_GAIN,
        "clip": pp.CLIP,
        "max_shift": pp.MAX_SHIFT,
        "colour": "BGR, (v / 255 - 0.5) / 0.5",
        "crop": "square, side crop_scale x max(w, h) of the smoothed Haar box, edge-replicated, INTER_AREA",
        "detector": "haarcascade_frontalface_default.xml",
    }


@dataclass(frozen=True, slots=True)
class LivenessModelInfo:
    """What a server needs from a model's metadata JSON."""

    model_path: Path
    model_version: str
    input_name: str
    output_name: str
    history: int
    input_size: int
    crop_scale: float
    threshold: float
    synthetic_data: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)


def load_model_info(model_path: Path) -> LivenessModelInfo:
    """Read and check ``model_path``'s metadata JSON (its preprocessing must match this code's)."""
    path = metadata_path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: a liveness model ships with its metadata JSON")
    raw: dict[str, Any] = json.loads(path.read_text())
    if raw.get("format") != METADATA_FORMAT:
        raise ValueError(f"{path}: format {raw.get('format')!r}, expected {METADATA_FORMAT!r}")
    prep = raw["preprocessing"]
    expected = preprocessing_spec(
        history=int(prep["history"]), input_size=int(prep["input_size"]), crop_scale=float(prep["crop_scale"])
    )
    diff = sorted(k for k in expected if prep.get(k) != expected[k])
    if diff:
        raise ValueError(f"{path} was trained with different preprocessing ({', '.join(diff)}); retrain it")
    return LivenessModelInfo(
        model_path=Path(model_path),
        model_version=str(raw["model_version"]),
        input_name=str(raw["onnx"]["input_name"]),
        output_name=str(raw["onnx"]["output_name"]),
        history=int(prep["history"]),
        input_size=int(prep["input_size"]),
        crop_scale=float(prep["crop_scale"]),
        threshold=float(raw["threshold"]),
        synthetic_data=bool(raw["synthetic_data"]),
        metrics=dict(raw.get("metrics", {})),
        raw=raw,
    )
