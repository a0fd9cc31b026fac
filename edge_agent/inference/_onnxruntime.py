"""The CPU engine (default on kiosks without a GPU): ONNX Runtime."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.inference._base import Dim, EngineInfo, Tensor, run_in_thread

__all__ = ["OnnxRuntimeEngine"]


def _dims(shape: Sequence[Any]) -> tuple[Dim, ...]:
    return tuple(d if isinstance(d, int | str) else None for d in shape)


class OnnxRuntimeEngine:
    """ONNX Runtime on the CPU, ``threads`` intra-op threads (1 keeps latency predictable on a busy kiosk)."""

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        import onnxruntime as ort  # heavy: only when an engine is actually made

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        ins, outs = self._session.get_inputs(), self._session.get_outputs()
        self._inputs = tuple(i.name for i in ins)
        self._outputs = tuple(o.name for o in outs)
        self._info = EngineInfo(
            "onnxruntime",
            Path(model_path),
            self._inputs,
            self._outputs,
            "cpu",
            "fp32",
            input_shapes=tuple(_dims(i.shape) for i in ins),
            output_shapes=tuple(_dims(o.shape) for o in outs),
        )

    @property
    def info(self) -> EngineInfo:
        return self._info

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        missing = set(self._inputs) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)}; the model takes {list(self._inputs)}")
        feed = {name: np.ascontiguousarray(inputs[name]) for name in self._inputs}
        results = self._session.run(list(self._outputs), feed)
        return dict(zip(self._outputs, results, strict=True))

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return await run_in_thread(self, inputs)

    def close(self) -> None:
        del self._session
