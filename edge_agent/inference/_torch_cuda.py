"""Torch on CUDA: FP16, its own stream, optional CUDA graphs, async without blocking the event loop.

Model files: a ``torch.export`` program (``.pt2``, preferred) or TorchScript (``.pt``), both written by
``save_torch_program``/``save_torchscript`` next to the ONNX file. Written against torch 2.x
(``torch.cuda.Stream``, ``torch.cuda.CUDAGraph``/``torch.cuda.graph``, ``torch.export.load``).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from edge_agent.inference._base import EngineInfo, EngineUnavailable, Tensor
from edge_agent.inference._torch_program import call_program, load_torch_program

if TYPE_CHECKING:
    import torch

__all__ = ["TorchCudaEngine", "torch_cuda_unavailable_reason"]

_ShapeKey = tuple[tuple[int, ...], ...]


def torch_cuda_unavailable_reason() -> str | None:
    """Why torch cannot run on CUDA here, or None when it can."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return "torch sees no CUDA device"
    return None


@dataclass(slots=True)
class _Graph:
    graph: torch.cuda.CUDAGraph
    static_inputs: list[torch.Tensor]
    static_outputs: tuple[torch.Tensor, ...]


class TorchCudaEngine:
    """A torch model on one CUDA device, in FP16 by default.

    ``cuda_graphs=True`` captures one CUDA graph per distinct input shape after ``warmup`` eager runs of that
    shape (static input buffers, replayed); shapes beyond ``max_graphs`` and not-yet-warm shapes run eagerly,
    so a changing batch size falls back instead of failing. Work is queued on a private stream under a lock;
    the wait for completion (an event) happens outside the lock, so concurrent callers pipeline.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        device: str = "cuda:0",
        precision: Literal["fp16", "fp32"] = "fp16",
        cuda_graphs: bool = False,
        warmup: int = 2,
        max_graphs: int = 8,
        input_names: Sequence[str] | None = None,
        output_names: Sequence[str] | None = None,
    ) -> None:
        reason = torch_cuda_unavailable_reason()
        if reason is not None:
            raise EngineUnavailable("torch-cuda", reason)
        import torch

        self._torch = torch
        self._device = torch.device(device)
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._program = load_torch_program(
            Path(model_path),
            device=str(self._device),
            dtype=self._dtype,
            input_names=input_names,
            output_names=output_names,
        )
        self._stream = torch.cuda.Stream(device=self._device)  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        self._cuda_graphs = cuda_graphs
        self._warmup = max(1, warmup)
        self._max_graphs = max_graphs
        self._graphs: dict[_ShapeKey, _Graph] = {}
        self._seen: Counter[_ShapeKey] = Counter()
        self._closed = False
        p = self._program
        self._info = EngineInfo(
            "torch-cuda",
            Path(model_path),
            p.inputs,
            p.outputs,
            str(self._device),
            precision,
            input_shapes=p.input_shapes,
            output_shapes=p.output_shapes,
        )

    @property
    def info(self) -> EngineInfo:
        return self._info

    @property
    def graphs_captured(self) -> int:
        return len(self._graphs)

    def _eager(self, args: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        return call_program(self._program, args)

    def _capture(self, args: Sequence[torch.Tensor]) -> _Graph:
        torch = self._torch
        static_inputs = [a.clone() for a in args]
        graph = torch.cuda.CUDAGraph()
        # thread_local: other threads may use CUDA (another engine) while this one captures.
        with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
            static_outputs = call_program(self._program, static_inputs)
        return _Graph(graph, static_inputs, static_outputs)

    def _forward(self, args: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        if not self._cuda_graphs:
            return self._eager(args)
        key: _ShapeKey = tuple(tuple(a.shape) for a in args)
        entry = self._graphs.get(key)
        if entry is None:
            self._seen[key] += 1
            if self._seen[key] <= self._warmup or len(self._graphs) >= self._max_graphs:
                return self._eager(args)  # warm-up on the side stream, or too many shapes: eager
            entry = self._graphs[key] = self._capture(args)
        for static, arg in zip(entry.static_inputs, args, strict=True):
            static.copy_(arg, non_blocking=True)
        entry.graph.replay()
        return entry.static_outputs

    def _launch(self, inputs: Mapping[str, Tensor]) -> tuple[Any, dict[str, torch.Tensor]]:
        """Queue copy-in, forward and copy-out on the private stream; returns (event, pinned host outputs)."""
        torch = self._torch
        names = self._program.inputs
        missing = set(names) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)}; the model takes {list(names)}")
        with self._lock:
            if self._closed:
                raise RuntimeError("engine is closed")
            with torch.cuda.device(self._device), torch.cuda.stream(self._stream), torch.inference_mode():
                args = [
                    torch.from_numpy(np.ascontiguousarray(inputs[n], dtype=np.float32))
                    .pin_memory()
                    .to(self._device, non_blocking=True)
                    .to(self._dtype)
                    for n in names
                ]
                outs = self._forward(args)
                host: dict[str, Any] = {}
                for name, out in zip(self._program.outputs, outs, strict=True):
                    buf = torch.empty(tuple(out.shape), dtype=torch.float32, pin_memory=True)
                    buf.copy_(out.float(), non_blocking=True)  # ordered before the next replay on this stream
                    host[name] = buf
                event = torch.cuda.Event(blocking=True)  # the waiting thread sleeps instead of spinning
                event.record(self._stream)
        return event, host

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        event, host = self._launch(inputs)
        event.synchronize()
        return {name: t.numpy() for name, t in host.items()}

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        # Launch and the event wait both happen in a worker thread: the event loop never blocks on the GPU.
        return await asyncio.to_thread(self.run, inputs)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stream.synchronize()
            self._graphs.clear()
            del self._program
