"""The FP16 gate: an engine that computes in reduced precision serves only after matching FP32 on a probe.

TensorRT builds FP16 engines by default; a layer that overflows or loses precision in FP16 (a large
activation, a softmax over big logits) makes the engine answer differently from the model that was validated.
``check_parity`` runs the candidate and an FP32 reference (ONNX Runtime on the CPU, on the same ONNX file) on
the same probe and refuses the candidate when any output differs by more than ``atol + rtol * |reference|``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edge_agent.inference._base import EngineInfo, InferenceEngine, Tensor

__all__ = ["FP16_ATOL", "FP16_RTOL", "ParityError", "check_parity", "fp32_reference", "needs_parity"]

FP16_ATOL = 1e-2
FP16_RTOL = 1e-2


class ParityError(RuntimeError):
    """The candidate's outputs differ from the FP32 reference beyond tolerance."""

    def __init__(self, reason: str, max_abs_diff: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.max_abs_diff = max_abs_diff


def needs_parity(info: EngineInfo) -> bool:
    """Whether an engine computes below FP32 (and so must pass ``check_parity`` before it serves)."""
    return info.precision.lower() not in ("fp32", "float32")


def fp32_reference(model_path: Path) -> InferenceEngine:
    """ONNX Runtime on the CPU, FP32, on the ONNX file of ``model_path`` (its ``.onnx`` sibling for a torch file)."""
    from edge_agent.inference._onnxruntime import OnnxRuntimeEngine

    path = Path(model_path)
    onnx = path if path.suffix == ".onnx" else path.with_suffix(".onnx")
    if not onnx.is_file():
        raise FileNotFoundError(f"no ONNX file {onnx.name} to check {path.name} against in FP32")
    return OnnxRuntimeEngine(onnx, threads=1)


def check_parity(
    candidate: InferenceEngine,
    reference: InferenceEngine,
    probe: Mapping[str, Tensor],
    *,
    atol: float = FP16_ATOL,
    rtol: float = FP16_RTOL,
) -> float:
    """Run both on ``probe``; return the largest absolute difference, or raise ``ParityError``."""
    got = candidate.run(probe)
    want = reference.run(probe)
    worst = 0.0
    for name, ref in want.items():
        out = got.get(name)
        if out is None:
            raise ParityError(f"candidate produced no output {name!r}", float("inf"))
        a, b = np.asarray(out, np.float64), np.asarray(ref, np.float64)
        if a.shape != b.shape:
            raise ParityError(f"output {name!r} has shape {a.shape}, FP32 has {b.shape}", float("inf"))
        if not np.all(np.isfinite(a)):
            raise ParityError(f"output {name!r} is not finite", float("inf"))
        diff = np.abs(a - b)
        worst = max(worst, float(diff.max(initial=0.0)))
        if np.any(diff > atol + rtol * np.abs(b)):
            raise ParityError(
                f"output {name!r} differs from FP32 by up to {float(diff.max()):.3g} "
                f"(tolerance {atol:g} + {rtol:g}·|fp32|)",
                worst,
            )
    return worst
