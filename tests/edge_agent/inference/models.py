"""Tiny torch models built in the test's tmp dir and exported to ONNX / torch.export / TorchScript, plus a
slow, instrumented engine wrapper for the hot-swap and pool tests."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edge_agent.inference import (
    EngineInfo,
    InferenceEngine,
    Tensor,
    export_onnx,
    save_torch_program,
    save_torchscript,
)


class MLP(nn.Module):
    def __init__(self, n_in: int = 12, n_out: int = 5) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 32), nn.Tanh(), nn.Linear(32, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3, padding=1)
        self.head = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        h = nn.functional.max_pool2d(h, 2)
        return self.head(h.flatten(1))


class Constant(nn.Module):
    """Outputs ``value`` everywhere (weight 0, bias ``value``): a model whose version is visible in its output."""

    def __init__(self, n_in: int, value: float) -> None:
        super().__init__()
        self.lin = nn.Linear(n_in, 3)
        with torch.no_grad():
            self.lin.weight.zero_()
            self.lin.bias.fill_(value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def seeded(module: nn.Module, seed: int) -> nn.Module:
    """Re-initialise every parameter from a seeded generator (no global RNG)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.4)
    return module.eval()


@dataclass(frozen=True)
class Exported:
    module: nn.Module
    onnx: Path
    pt2: Path
    pt: Path
    example: dict[str, Tensor]


def export_all(module: nn.Module, example: Mapping[str, Tensor], directory: Path, stem: str) -> Exported:
    directory.mkdir(parents=True, exist_ok=True)
    onnx = export_onnx(module, example, directory / f"{stem}.onnx", output_names=["y"])
    pt2 = save_torch_program(module, example, directory / f"{stem}.pt2", output_names=["y"])
    pt = save_torchscript(module, example, directory / f"{stem}.pt", output_names=["y"])
    return Exported(module, onnx, pt2, pt, dict(example))


def torch_reference(module: nn.Module, x: Tensor) -> np.ndarray:
    with torch.inference_mode():
        return module(torch.from_numpy(np.ascontiguousarray(x))).numpy()


class SlowEngine:
    """Wraps a real engine: each run sleeps ``delay`` s (in the caller's thread), counts requests in flight,
    and records whether it was closed while any were still running."""

    def __init__(self, inner: InferenceEngine, delay: float = 0.01, *, fail: bool = False) -> None:
        self.inner = inner
        self.delay = delay
        self.fail = fail
        self.inflight = 0
        self.max_inflight = 0
        self.calls = 0
        self.batch_sizes: list[int] = []
        self.closed = False
        self.closed_with_inflight = False
        self._lock = threading.Lock()

    @property
    def info(self) -> EngineInfo:
        return self.inner.info

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        with self._lock:
            if self.closed:
                raise RuntimeError("run after close")
            self.inflight += 1
            self.calls += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            self.batch_sizes.append(next(iter(inputs.values())).shape[0])
        try:
            time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("engine failure (test)")
            return self.inner.run(inputs)
        finally:
            with self._lock:
                self.inflight -= 1

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return await asyncio.to_thread(self.run, inputs)

    def close(self) -> None:
        with self._lock:
            self.closed_with_inflight = self.inflight > 0
            self.closed = True
        self.inner.close()
