"""Regression tests for the GPU-path defects: what can run on a CPU runs here; the rest needs an NVIDIA GPU
and is skipped with the reason (``scripts/gpu_check.sh`` runs it where one is lent).

Defects: on ``torch-cuda`` every model update was rejected (updates are ONNX; the engine kind was kept); the
TensorRT engine's maximum batch (32) was below what scaling commands allow (1024); nothing compared FP16 output
with FP32 before a new engine served; a failed TensorRT setup leaked its CUDA context; the liveness model had
no torch program, so ``torch-cuda`` fell back to the CPU.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_agent.inference import (
    EngineInfo,
    EngineUnavailable,
    HotSwapEngine,
    InferenceEngine,
    InferenceWorkerPool,
    OnnxRuntimeEngine,
    ParityError,
    SwapRejected,
    Tensor,
    check_parity,
    create_engine,
    run_in_thread,
)
from edge_agent.inference._hotswap import default_factory
from edge_agent.inference._tensorrt import tensorrt_unavailable_reason
from edge_agent.inference._torch_cuda import torch_cuda_unavailable_reason
from tests.edge_agent.inference.models import MLP, export_all, seeded

pytestmark = pytest.mark.timeout(120)

TENSORRT_REASON = tensorrt_unavailable_reason()
TORCH_CUDA_REASON = torch_cuda_unavailable_reason()
needs_tensorrt = pytest.mark.skipif(TENSORRT_REASON is not None, reason=f"TensorRT: {TENSORRT_REASON}")
needs_torch_cuda = pytest.mark.skipif(TORCH_CUDA_REASON is not None, reason=f"torch-cuda: {TORCH_CUDA_REASON}")
X = np.random.default_rng(3).standard_normal((5, 12)).astype(np.float32)


def mlp(tmp_path: Path, seed: int = 11, *, bias_shift: float = 0.0, stem: str = "mlp") -> Path:
    module = seeded(MLP(), seed)
    if bias_shift:
        with torch.no_grad():
            module.net[2].bias.add_(bias_shift)  # type: ignore[union-attr, operator]
    return export_all(module, {"x": X[:2]}, tmp_path, stem).onnx


class Declared:
    """A real ONNX Runtime engine that declares other engine facts (precision, maximum batch), rounding its
    inputs and outputs through float16 when it declares FP16: the engine-side facts the code under test reads."""

    def __init__(self, inner: OnnxRuntimeEngine, *, precision: str = "fp32", max_batch: int | None = None) -> None:
        self.inner = inner
        self._info = dataclasses.replace(inner.info, precision=precision, max_batch=max_batch)
        self.batches: list[int] = []

    @property
    def info(self) -> EngineInfo:
        return self._info

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.batches.append(int(next(iter(inputs.values())).shape[0]))
        half = self._info.precision == "fp16"
        feed = {k: np.asarray(v, np.float16).astype(np.float32) if half else v for k, v in inputs.items()}
        out = self.inner.run(feed)
        return {k: np.asarray(v, np.float16).astype(np.float32) if half else v for k, v in out.items()}

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return await run_in_thread(self, inputs)

    def close(self) -> None:
        self.inner.close()


# --- engine kind on model update -------------------------------------------------------------------------


def test_a_model_update_for_torch_cuda_is_loaded_by_an_engine_that_reads_onnx(tmp_path: Path) -> None:
    onnx = mlp(tmp_path)
    onnx.with_suffix(".pt2").unlink()
    onnx.with_suffix(".pt").unlink()
    with pytest.raises(EngineUnavailable):  # what the old factory did with every update
        create_engine("torch-cuda", onnx)
    engine = default_factory("torch-cuda")(onnx)
    try:
        assert engine.info.kind in ("tensorrt", "onnxruntime")
        want = OnnxRuntimeEngine(onnx).run({"x": X})["y"]
        np.testing.assert_allclose(engine.run({"x": X})["y"], want, atol=1e-2 if engine.info.kind == "tensorrt" else 0)
    finally:
        engine.close()


# --- maximum batch ----------------------------------------------------------------------------------------


async def test_the_pool_never_sends_a_batch_above_the_engines_maximum(tmp_path: Path) -> None:
    engine = Declared(OnnxRuntimeEngine(mlp(tmp_path)), max_batch=4)
    pool = InferenceWorkerPool(engine, workers=1, max_batch=8, batch_window_s=0.05)
    pool.set_max_batch(1024)  # what a scaling command may ask for
    assert pool.max_batch == 4
    async with pool:
        outs = await asyncio.gather(*(pool.submit({"x": X[i % 5 : i % 5 + 1]}) for i in range(40)))
    assert len(outs) == 40
    assert engine.batches and max(engine.batches) <= 4
    assert pool.stats().max_batch == 4


# --- FP16 parity gate -------------------------------------------------------------------------------------


def test_parity_accepts_fp16_rounding_and_refuses_a_wrong_engine(tmp_path: Path) -> None:
    good = mlp(tmp_path, stem="good")
    bad = mlp(tmp_path, bias_shift=0.2, stem="bad")  # an engine whose output drifted (overflow, miscompile)
    reference = OnnxRuntimeEngine(good)
    diff = check_parity(Declared(OnnxRuntimeEngine(good), precision="fp16"), reference, {"x": X})
    assert 0 < diff < 1e-2
    with pytest.raises(ParityError, match="differs from FP32"):
        check_parity(OnnxRuntimeEngine(bad), reference, {"x": X})


async def test_a_new_fp16_engine_serves_only_after_matching_fp32(tmp_path: Path) -> None:
    v1, v2 = mlp(tmp_path, stem="v1"), mlp(tmp_path, seed=12, stem="v2")
    drifted = mlp(tmp_path, seed=12, bias_shift=0.2, stem="v2drift")

    def load(path: Path) -> InferenceEngine:
        # v2 "built" in FP16 from v2.onnx; the drifted build claims to be v2.onnx too but answers differently
        if path.name == "v2drift.onnx":
            return Declared(OnnxRuntimeEngine(drifted), precision="fp16")
        return Declared(OnnxRuntimeEngine(path), precision="fp16")

    def reference(path: Path) -> InferenceEngine:
        return OnnxRuntimeEngine(v2 if path.name == "v2drift.onnx" else path)

    hot = HotSwapEngine(OnnxRuntimeEngine(v1), version="1", factory=load, parity_reference=reference)
    with pytest.raises(SwapRejected, match="fp16 parity"):
        await hot.swap(drifted, version="2-bad", probe={"x": X})
    assert hot.version == "1" and hot.rejections == 1
    await hot.swap(v2, version="2", probe={"x": X})
    assert hot.version == "2"
    assert hot.last_parity_diff is not None and hot.last_parity_diff < 1e-2
    hot.close()


# --- liveness torch program ----------------------------------------------------------------------------


def test_the_liveness_model_ships_a_torch_program_for_torch_cuda(tmp_path: Path) -> None:
    from edge_agent.inference._torch_program import call_program, load_torch_program
    from edge_agent.vision import CHANNELS, GhostLivenessNet
    from edge_agent.vision._train import export_onnx, export_torch_program

    torch.manual_seed(0)
    model = GhostLivenessNet(len(CHANNELS)).eval()
    onnx = tmp_path / "liveness.onnx"
    export_onnx(model, onnx, input_size=64)
    pt2 = export_torch_program(model, onnx, input_size=64)
    x = np.random.default_rng(1).standard_normal((3, len(CHANNELS), 64, 64)).astype(np.float32)
    program = load_torch_program(pt2)
    with torch.inference_mode():
        (got,) = call_program(program, [torch.from_numpy(x)])
    np.testing.assert_allclose(got.numpy(), OnnxRuntimeEngine(onnx).run({"input": x})["live_prob"], atol=1e-5)
    if TORCH_CUDA_REASON is not None:
        with pytest.raises(EngineUnavailable) as info:  # refused for the GPU, no longer for a missing program
            create_engine("torch-cuda", onnx)
        assert "no torch program" not in info.value.reason


# --- GPU only -----------------------------------------------------------------------------------------------


@needs_tensorrt
def test_tensorrt_runs_batches_above_its_profile_in_slices(tmp_path: Path) -> None:
    from edge_agent.inference import TensorRTEngine

    onnx = mlp(tmp_path)
    engine = TensorRTEngine(onnx, max_batch=4, cache_dir=tmp_path / "trt")
    try:
        assert engine.info.max_batch == 4
        big = np.random.default_rng(9).standard_normal((37, 12)).astype(np.float32)
        np.testing.assert_allclose(engine.run({"x": big})["y"], OnnxRuntimeEngine(onnx).run({"x": big})["y"], atol=2e-2)
    finally:
        engine.close()


@needs_tensorrt
def test_a_failed_tensorrt_setup_releases_its_context(tmp_path: Path) -> None:
    import pycuda.driver as cuda

    from edge_agent.inference import TensorRTEngine

    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    cuda.init()
    ctx = cuda.Device(0).retain_primary_context()
    ctx.push()
    free_before = cuda.mem_get_info()[0]
    ctx.pop()
    for _ in range(5):
        with pytest.raises(RuntimeError):
            TensorRTEngine(broken, cache_dir=tmp_path / "trt")
        assert cuda.Context.get_current() is None  # nothing left pushed on this thread
    ctx.push()
    free_after = cuda.mem_get_info()[0]
    ctx.pop()
    ctx.detach()
    assert free_before - free_after < 64 << 20


@needs_tensorrt
def test_a_tensorrt_fp16_engine_passes_the_parity_gate(tmp_path: Path) -> None:
    engine = create_engine("tensorrt", mlp(tmp_path), cache_dir=tmp_path / "trt")
    try:
        assert engine.info.precision == "fp16"  # created, so the gate passed
    finally:
        engine.close()


@needs_torch_cuda
def test_torch_cuda_serves_the_liveness_program(tmp_path: Path) -> None:
    from edge_agent.vision import CHANNELS, GhostLivenessNet
    from edge_agent.vision._train import export_onnx, export_torch_program

    torch.manual_seed(0)
    model = GhostLivenessNet(len(CHANNELS)).eval()
    onnx = tmp_path / "liveness.onnx"
    export_onnx(model, onnx, input_size=64)
    export_torch_program(model, onnx, input_size=64)
    engine = create_engine("torch-cuda", onnx)
    try:
        assert engine.info.kind == "torch-cuda" and engine.info.device.startswith("cuda")
        x = np.random.default_rng(1).standard_normal((3, len(CHANNELS), 64, 64)).astype(np.float32)
        want = OnnxRuntimeEngine(onnx).run({"input": x})["live_prob"]
        np.testing.assert_allclose(engine.run({"input": x})["live_prob"], want, atol=2e-2)
    finally:
        engine.close()
