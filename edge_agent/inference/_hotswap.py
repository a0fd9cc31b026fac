"""Swap a model version under load: load and validate off the event loop, switch atomically, close the old
engine only after its in-flight requests finished. A new version that fails to load or validate is rejected
and the old one keeps serving."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge_agent.inference._base import EngineInfo, InferenceEngine, Tensor
from edge_agent.inference._batching import probe_inputs
from edge_agent.inference._parity import FP16_ATOL, FP16_RTOL, ParityError, check_parity, fp32_reference, needs_parity

__all__ = ["EngineFactory", "HotSwapEngine", "SwapRejected", "default_factory"]

_log = logging.getLogger(__name__)

#: Loads a model file into an engine (``create_engine`` with fixed options, typically).
EngineFactory = Callable[[Path], InferenceEngine]


def default_factory(kind: str) -> EngineFactory:
    """Load new versions with the serving engine's kind. Model updates arrive as ONNX; Torch CUDA loads only
    a torch program (``.pt2``/``.pt``), so an update without one is loaded by the best engine that takes ONNX
    (TensorRT, else ONNX Runtime) instead of being rejected, and the switch is logged."""

    def load(path: Path) -> InferenceEngine:
        from edge_agent.inference._base import EngineUnavailable
        from edge_agent.inference._factory import AUTO_ORDER, create_engine
        from edge_agent.inference._torch_program import TORCH_SUFFIXES

        no_program = not any(path.with_suffix(s).exists() for s in TORCH_SUFFIXES)
        if kind == "torch-cuda" and path.suffix == ".onnx" and no_program:
            for other in (k for k in AUTO_ORDER if k != "torch-cuda"):
                try:
                    engine = create_engine(other, path)  # type: ignore[arg-type]
                except EngineUnavailable:
                    continue
                _log.warning("%s has no torch program: serving it with %s instead of torch-cuda", path.name, other)
                return engine
        return create_engine(kind, path)  # type: ignore[arg-type]

    return load


class SwapRejected(RuntimeError):
    """A new model version was not installed; ``reason`` says why. The previous version is still serving."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"version {version} rejected: {reason}")
        self.version = version
        self.reason = reason


@dataclass(slots=True)
class _Slot:
    engine: InferenceEngine
    version: str
    inflight: int = 0
    retired: bool = False
    closed: bool = False


def _compatible(old: EngineInfo, new: EngineInfo) -> str | None:
    if new.inputs != old.inputs:
        return f"inputs {list(new.inputs)} differ from {list(old.inputs)}"
    if new.outputs != old.outputs:
        return f"outputs {list(new.outputs)} differ from {list(old.outputs)}"
    if old.input_shapes and new.input_shapes:
        for name, a, b in zip(old.inputs, old.input_shapes, new.input_shapes, strict=True):
            if len(a) != len(b) or any(x != y for x, y in zip(a[1:], b[1:], strict=True) if isinstance(x, int)):
                return f"input {name!r} shape {b} differs from {a}"
    return None


class HotSwapEngine:
    """An ``InferenceEngine`` whose model can be replaced while requests are running.

    ``factory`` loads a new model file (default: ``create_engine`` of the current engine's kind). ``probe``
    is the input used to validate a new version (default: a deterministic one built from the declared input
    shapes); a new version must have the same input/output names, the same non-batch input shapes, and
    produce outputs of the same shapes as the current one, all finite; an engine computing below FP32
    (TensorRT FP16) must also match ``parity_reference`` (default: ONNX Runtime FP32 on the same ONNX file)
    within ``parity_atol`` + ``parity_rtol``·|fp32| on the probe before it serves.
    """

    def __init__(
        self,
        engine: InferenceEngine,
        *,
        version: str,
        factory: EngineFactory | None = None,
        probe: Mapping[str, Tensor] | None = None,
        parity_reference: EngineFactory | None = None,
        parity_atol: float = FP16_ATOL,
        parity_rtol: float = FP16_RTOL,
    ) -> None:
        self._slot = _Slot(engine, version)
        self._lock = threading.Lock()
        self._swap_lock = asyncio.Lock()
        self._factory = factory or self._default_factory(engine.info.kind)
        self._probe = dict(probe) if probe is not None else None
        self._parity_reference = parity_reference or fp32_reference
        self._parity_tol = (parity_atol, parity_rtol)
        #: Largest |candidate - FP32| seen by the last parity check (None: the last candidate was FP32).
        self.last_parity_diff: float | None = None
        self._closed = False
        self.swaps = 0
        self.rejections = 0

    @staticmethod
    def _default_factory(kind: str) -> EngineFactory:
        return default_factory(kind)

    @property
    def info(self) -> EngineInfo:
        return self._slot.engine.info

    @property
    def version(self) -> str:
        return self._slot.version

    def _acquire(self) -> _Slot:
        with self._lock:
            if self._closed:
                raise RuntimeError("engine is closed")
            slot = self._slot
            slot.inflight += 1
            return slot

    def _release(self, slot: _Slot) -> None:
        with self._lock:
            slot.inflight -= 1
            close = slot.retired and slot.inflight == 0 and not slot.closed
            if close:
                slot.closed = True
        if close:
            slot.engine.close()

    def run_with_version(self, inputs: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
        """``run``, plus the version that actually served the request."""
        slot = self._acquire()
        try:
            return slot.engine.run(inputs), slot.version
        finally:
            self._release(slot)

    async def run_async_with_version(self, inputs: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], str]:
        """``run_async``, plus the version that actually served the request."""
        slot = self._acquire()
        try:
            return await slot.engine.run_async(inputs), slot.version
        finally:
            self._release(slot)

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return self.run_with_version(inputs)[0]

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return (await self.run_async_with_version(inputs))[0]

    def _validate(self, new: InferenceEngine, version: str, probe: Mapping[str, Tensor] | None) -> None:
        current = self._slot.engine.info
        problem = _compatible(current, new.info)
        if problem:
            raise SwapRejected(version, problem)
        try:
            feed = dict(probe or self._probe or probe_inputs(current))
        except ValueError as exc:
            raise SwapRejected(version, f"no probe input: {exc}") from exc
        try:
            got = new.run(feed)
        except Exception as exc:
            raise SwapRejected(version, f"probe run failed: {exc}") from exc
        expected = self.run(feed)
        for name, ref in expected.items():
            out = got.get(name)
            if out is None:
                raise SwapRejected(version, f"probe produced no output {name!r}")
            if out.shape != ref.shape:
                raise SwapRejected(version, f"output {name!r} has shape {out.shape}, expected {ref.shape}")
            if not np.all(np.isfinite(out)):
                raise SwapRejected(version, f"output {name!r} is not finite on the probe")
        self.last_parity_diff = None
        if needs_parity(new.info):
            try:
                reference = self._parity_reference(new.info.model_path)
            except Exception as exc:
                raise SwapRejected(version, f"no FP32 reference for the {new.info.precision} engine: {exc}") from exc
            try:
                atol, rtol = self._parity_tol
                self.last_parity_diff = check_parity(new, reference, feed, atol=atol, rtol=rtol)
            except ParityError as exc:
                raise SwapRejected(version, f"{new.info.precision} parity: {exc.reason}") from exc
            finally:
                reference.close()

    async def swap(self, model_path: str | Path, *, version: str, probe: Mapping[str, Tensor] | None = None) -> str:
        """Install ``model_path`` as ``version``; returns the version it replaced, or raises ``SwapRejected``.

        Loading and validation run in a worker thread. Requests already running finish on the old engine,
        which is closed when the last of them returns. Concurrent swaps are applied one after the other.
        """
        async with self._swap_lock:
            if self._closed:
                raise RuntimeError("engine is closed")
            try:
                new = await asyncio.to_thread(self._factory, Path(model_path))
            except Exception as exc:
                self.rejections += 1
                raise SwapRejected(version, f"loading {Path(model_path).name} failed: {exc}") from exc
            try:
                await asyncio.to_thread(self._validate, new, version, probe)
            except SwapRejected:
                self.rejections += 1
                await asyncio.to_thread(new.close)
                raise
            with self._lock:
                old = self._slot
                self._slot = _Slot(new, version)
                old.retired = True
                close_now = old.inflight == 0 and not old.closed
                if close_now:
                    old.closed = True
            self.swaps += 1
            if close_now:
                await asyncio.to_thread(old.engine.close)
            return old.version

    def close(self) -> None:
        """Stop accepting requests; the engine closes once requests already running have finished."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            slot = self._slot
            slot.retired = True
            close = slot.inflight == 0 and not slot.closed
            if close:
                slot.closed = True
        if close:
            slot.engine.close()
