"""One interface for every inference engine: load a model file, run a batch (sync or async), report itself."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["EngineInfo", "InferenceEngine", "Tensor", "run_in_thread"]

Tensor = NDArray[np.generic]


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
