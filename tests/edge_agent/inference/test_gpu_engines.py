"""Torch CUDA and TensorRT against ONNX Runtime (FP16 tolerance). Need an NVIDIA GPU; without one these are
skipped with the reason, and the engines must refuse to start with a clear EngineUnavailable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import EngineUnavailable, OnnxRuntimeEngine, TensorRTEngine, TorchCudaEngine
from edge_agent.inference._tensorrt import tensorrt_unavailable_reason
from edge_agent.inference._torch_cuda import torch_cuda_unavailable_reason
from tests.edge_agent.inference.models import CNN, MLP, Exported, export_all, seeded

FP16_ATOL = 1e-2
TORCH_CUDA_REASON = torch_cuda_unavailable_reason()
TENSORRT_REASON = tensorrt_unavailable_reason()


def _models(tmp_path: Path) -> list[tuple[Exported, tuple[int, ...]]]:
    rng = np.random.default_rng(11)
    mlp = export_all(seeded(MLP(), 11), {"x": rng.standard_normal((2, 12), dtype=np.float32)}, tmp_path, "mlp")
    cnn = export_all(seeded(CNN(), 12), {"x": rng.standard_normal((2, 1, 8, 8), dtype=np.float32)}, tmp_path, "cnn")
    return [(mlp, (12,)), (cnn, (1, 8, 8))]


@pytest.mark.skipif(TORCH_CUDA_REASON is None, reason="CUDA is available: the refusal path does not apply")
def test_torch_cuda_refuses_without_cuda(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="torch-cuda engine unavailable") as info:
        TorchCudaEngine(tmp_path / "model.pt2")
    assert info.value.reason == TORCH_CUDA_REASON


@pytest.mark.skipif(TENSORRT_REASON is None, reason="TensorRT is available: the refusal path does not apply")
def test_tensorrt_refuses_without_tensorrt(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="tensorrt engine unavailable") as info:
        TensorRTEngine(tmp_path / "model.onnx")
    assert info.value.reason == TENSORRT_REASON


@pytest.mark.gpu
@pytest.mark.skipif(TORCH_CUDA_REASON is not None, reason=f"Torch CUDA unavailable: {TORCH_CUDA_REASON}")
@pytest.mark.parametrize("suffix", ["pt2", "pt"])
@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_torch_cuda_matches_onnxruntime(tmp_path: Path, suffix: str, cuda_graphs: bool) -> None:
    rng = np.random.default_rng(13)
    for model, shape in _models(tmp_path):
        ort = OnnxRuntimeEngine(model.onnx)
        engine = TorchCudaEngine(model.pt2 if suffix == "pt2" else model.pt, cuda_graphs=cuda_graphs, warmup=1)
        assert engine.info.kind == "torch-cuda" and engine.info.precision == "fp16"
        for batch in (1, 8, 8, 8, 3, 8):  # repeats exercise graph capture and replay, 3 the shape fallback
            x = rng.standard_normal((batch, *shape), dtype=np.float32)
            got = engine.run({"x": x})["y"]
            assert got.dtype == np.float32
            np.testing.assert_allclose(got, ort.run({"x": x})["y"], atol=FP16_ATOL, rtol=FP16_ATOL)
        if cuda_graphs:
            assert engine.graphs_captured >= 1
        x = rng.standard_normal((4, *shape), dtype=np.float32)
        got = asyncio.run(engine.run_async({"x": x}))["y"]
        np.testing.assert_allclose(got, ort.run({"x": x})["y"], atol=FP16_ATOL, rtol=FP16_ATOL)
        engine.close()


@pytest.mark.gpu
@pytest.mark.skipif(TENSORRT_REASON is not None, reason=f"TensorRT unavailable: {TENSORRT_REASON}")
def test_tensorrt_matches_onnxruntime_and_caches(tmp_path: Path) -> None:
    rng = np.random.default_rng(17)
    cache = tmp_path / "trt-cache"
    models = _models(tmp_path)
    for model, shape in models:
        ort = OnnxRuntimeEngine(model.onnx)
        engine = TensorRTEngine(model.onnx, max_batch=16, cache_dir=cache)
        for batch in (1, 16, 5):
            x = rng.standard_normal((batch, *shape), dtype=np.float32)
            np.testing.assert_allclose(
                engine.run({"x": x})["y"], ort.run({"x": x})["y"], atol=FP16_ATOL, rtol=FP16_ATOL
            )
        assert engine.info.max_batch == 16
        x = rng.standard_normal((17, *shape), dtype=np.float32)  # above the profile: run in slices of 16
        np.testing.assert_allclose(engine.run({"x": x})["y"], ort.run({"x": x})["y"], atol=FP16_ATOL, rtol=FP16_ATOL)
        with pytest.raises(ValueError, match="exceeds the engine profile"):  # a non-batch dimension too large
            engine.run({"x": np.zeros((2, *shape[:-1], shape[-1] + 1), np.float32)})
        engine.close()
    plans = sorted(cache.glob("*.plan"))
    assert len(plans) == 2
    stamps = [p.stat().st_mtime_ns for p in plans]
    again = TensorRTEngine(models[0][0].onnx, max_batch=16, cache_dir=cache)  # same model: a cache hit
    again.close()
    assert [p.stat().st_mtime_ns for p in sorted(cache.glob("*.plan"))] == stamps
