"""One interface for every inference engine: load a model file, run a batch (sync or async), report itself."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["Dim", "EngineInfo", "EngineUnavailable", "InferenceEngine", "Tensor", "run_in_thread"]

Tensor = NDArray[np.generic]

#: One dimension of a declared tensor shape: a fixed size, a symbolic name (e.g. "batch") or unknown.
Dim = int | str | None


@dataclass(frozen=True, slots=True)
class EngineInfo:
    #: "onnxruntime", "torch-cuda" or "tensorrt"
    kind: str
    model_path: Path
    #: Input and output names in model order.
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    #: "cpu", "cuda:0", ...
    device: str
    precision: str
    #: Declared shapes, in the order of ``inputs``/``outputs`` (empty when the engine cannot tell).
    input_shapes: tuple[tuple[Dim, ...], ...] = ()
    output_shapes: tuple[tuple[Dim, ...], ...] = ()
    #: The largest batch the engine accepts (a TensorRT profile's maximum); None: no limit of its own.
    max_batch: int | None = None


class EngineUnavailable(RuntimeError):
    """This engine cannot run here (library missing, no GPU, ...); ``reason`` says why in words."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(f"{kind} engine unavailable: {reason}")
        self.kind = kind
        self.reason = reason


@runtime_checkable
class InferenceEngine(Protocol):
    """A loaded model. ``run`` takes named float32 arrays with the batch first and returns outputs by name."""

    @property
    def info(self) -> EngineInfo: ...

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]: ...

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]: ...

    def close(self) -> None: ...


async def run_in_thread(engine: InferenceEngine, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Default ``run_async`` for engines whose ``run`` releases the GIL (ONNX Runtime does)."""
    return await asyncio.to_thread(engine.run, inputs)
