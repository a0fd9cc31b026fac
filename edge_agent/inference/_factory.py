"""Pick an engine: ``create_engine("auto", ...)`` prefers TensorRT, then Torch CUDA, then ONNX Runtime."""

from __future__ import annotations

import importlib.util
import inspect
import logging
from pathlib import Path
from typing import Any, Literal, get_args

from edge_agent.inference._base import EngineUnavailable, InferenceEngine
from edge_agent.inference._batching import probe_inputs
from edge_agent.inference._onnxruntime import OnnxRuntimeEngine
from edge_agent.inference._parity import ParityError, check_parity, fp32_reference, needs_parity
from edge_agent.inference._tensorrt import TensorRTEngine, tensorrt_unavailable_reason
from edge_agent.inference._torch_cuda import TorchCudaEngine, torch_cuda_unavailable_reason
from edge_agent.inference._torch_program import TORCH_SUFFIXES

__all__ = ["AUTO_ORDER", "EngineKind", "available_engines", "create_engine"]

log = logging.getLogger(__name__)

EngineKind = Literal["auto", "onnxruntime", "torch-cuda", "tensorrt"]
#: What "auto" tries, best first.
AUTO_ORDER: tuple[str, ...] = ("tensorrt", "torch-cuda", "onnxruntime")

_CLASSES: dict[str, type[Any]] = {
    "onnxruntime": OnnxRuntimeEngine,
    "torch-cuda": TorchCudaEngine,
    "tensorrt": TensorRTEngine,
}


def _onnxruntime_unavailable_reason() -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install 'medkiosk[edge]')"
    return None


def available_engines() -> dict[str, str | None]:
    """Each engine kind mapped to why it cannot run here, or None when it can (this imports the libraries)."""
    return {
        "tensorrt": tensorrt_unavailable_reason(),
        "torch-cuda": torch_cuda_unavailable_reason(),
        "onnxruntime": _onnxruntime_unavailable_reason(),
    }


def _model_for(kind: str, path: Path) -> Path:
    """The file an engine kind loads: ONNX for ONNX Runtime/TensorRT, a sibling .pt2/.pt for Torch CUDA."""
    if kind == "torch-cuda":
        if path.suffix in TORCH_SUFFIXES:
            return path
        for suffix in TORCH_SUFFIXES:
            if path.with_suffix(suffix).exists():
                return path.with_suffix(suffix)
        raise EngineUnavailable("torch-cuda", f"no torch program (.pt2/.pt) next to {path.name}")
    if path.suffix in TORCH_SUFFIXES:
        onnx = path.with_suffix(".onnx")
        if not onnx.exists():
            raise EngineUnavailable(kind, f"{kind} needs an ONNX file; there is none next to {path.name}")
        return onnx
    return path


def _params(kind: str) -> set[str]:
    sig = inspect.signature(_CLASSES[kind].__init__)
    return {n for n, p in sig.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _gated(engine: InferenceEngine, path: Path) -> InferenceEngine:
    """An engine computing below FP32 serves only once it matches ONNX Runtime FP32 on a probe."""
    if not needs_parity(engine.info):
        return engine
    try:
        reference = fp32_reference(path)
        try:
            diff = check_parity(engine, reference, probe_inputs(engine.info))
        finally:
            reference.close()
    except (ParityError, FileNotFoundError, ValueError) as exc:
        engine.close()
        raise EngineUnavailable(engine.info.kind, f"{engine.info.precision} parity check failed: {exc}") from exc
    log.info("%s %s matches FP32 on the probe (max |diff| %.2e)", engine.info.kind, engine.info.precision, diff)
    return engine


def create_engine(kind: EngineKind, model_path: str | Path, **opts: Any) -> InferenceEngine:
    """Load ``model_path`` with the engine ``kind``; ``opts`` are that engine's keyword arguments.

    With ``"auto"`` the first engine of ``AUTO_ORDER`` that is available and loads wins; the others' failures
    are logged, and ``opts`` go to each candidate filtered to the arguments it accepts (an option no engine
    accepts is a ``TypeError``). An explicit kind raises ``EngineUnavailable`` when it cannot run here. An
    engine that computes below FP32 (TensorRT FP16) is checked against ONNX Runtime FP32 on a probe first and
    refused (``EngineUnavailable``; "auto" moves on) when it differs beyond tolerance.
    """
    path = Path(model_path)
    if kind not in get_args(EngineKind):
        raise ValueError(f"unknown engine kind {kind!r}; expected one of {get_args(EngineKind)}")
    if kind != "auto":
        engine: InferenceEngine = _CLASSES[kind](_model_for(kind, path), **opts)
        return _gated(engine, path)
    unknown = set(opts) - set().union(*(_params(k) for k in AUTO_ORDER))
    if unknown:
        raise TypeError(f"no engine accepts the options {sorted(unknown)}")
    reasons = available_engines()
    failures: dict[str, str] = {}
    for candidate in AUTO_ORDER:
        reason = reasons.get(candidate)
        if reason is not None:
            failures[candidate] = reason
            continue
        accepted = {k: v for k, v in opts.items() if k in _params(candidate)}
        try:
            engine = _gated(_CLASSES[candidate](_model_for(candidate, path), **accepted), path)
        except Exception as exc:
            if candidate == AUTO_ORDER[-1]:
                raise
            log.warning("engine %s could not load %s (%s); trying the next one", candidate, path.name, exc)
            failures[candidate] = str(exc)
            continue
        log.info("auto engine: %s for %s (skipped: %s)", candidate, path.name, failures or "none")
        return engine
    raise EngineUnavailable("auto", "; ".join(f"{k}: {v}" for k, v in failures.items()))
