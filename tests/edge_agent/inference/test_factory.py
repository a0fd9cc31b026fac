"""Engine selection: what is available here and why not, "auto" falling back to ONNX Runtime, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import (
    AUTO_ORDER,
    EngineUnavailable,
    available_engines,
    create_engine,
    profile_shapes,
    tensorrt_cache_key,
)
from tests.edge_agent.inference.models import MLP, export_all, seeded, torch_reference


def test_available_engines_names_every_kind_with_a_reason() -> None:
    reasons = available_engines()
    assert set(reasons) == set(AUTO_ORDER)
    assert reasons["onnxruntime"] is None
    for kind in ("tensorrt", "torch-cuda"):
        assert reasons[kind] is None or len(reasons[kind] or "") > 10


def test_auto_picks_the_best_available_and_falls_back_to_onnxruntime(tmp_path: Path) -> None:
    module = seeded(MLP(), 21)
    model = export_all(module, {"x": np.zeros((2, 12), np.float32)}, tmp_path, "mlp")
    reasons = available_engines()
    expected = next(k for k in AUTO_ORDER if reasons[k] is None)
    engine = create_engine("auto", model.onnx, threads=1, precision="fp32")  # options filtered per engine
    assert engine.info.kind == expected
    x = np.random.default_rng(21).standard_normal((3, 12), dtype=np.float32)
    np.testing.assert_allclose(engine.run({"x": x})["y"], torch_reference(module, x), atol=1e-2, rtol=0)
    engine.close()
    if reasons["tensorrt"] is not None and reasons["torch-cuda"] is not None:
        assert expected == "onnxruntime"


def test_explicit_kinds(tmp_path: Path) -> None:
    model = export_all(seeded(MLP(), 22), {"x": np.zeros((2, 12), np.float32)}, tmp_path, "mlp")
    assert create_engine("onnxruntime", model.pt2).info.model_path == model.onnx  # finds the sibling ONNX
    reasons = available_engines()
    if reasons["torch-cuda"] is not None:
        with pytest.raises(EngineUnavailable, match="torch-cuda"):
            create_engine("torch-cuda", model.onnx)
    with pytest.raises(ValueError, match="unknown engine kind"):
        create_engine("tpu", model.onnx)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="no engine accepts"):
        create_engine("auto", model.onnx, thread=1)
    with pytest.raises(TypeError):
        create_engine("onnxruntime", model.onnx, precision="fp16")


def test_torch_cuda_needs_a_torch_file(tmp_path: Path) -> None:
    onnx_only = tmp_path / "lonely.onnx"
    onnx_only.write_bytes(b"")
    with pytest.raises(EngineUnavailable):
        create_engine("torch-cuda", onnx_only)


def test_tensorrt_cache_key_covers_model_version_gpu_and_build() -> None:
    base = {
        "trt_version": "10.9.0",
        "gpu_name": "Orin",
        "compute_capability": (8, 7),
        "precision": "fp16",
        "batch": (1, 16, 32),
    }
    key = tensorrt_cache_key(b"model", **base)  # type: ignore[arg-type]
    assert key == tensorrt_cache_key(b"model", **base)  # type: ignore[arg-type]
    assert key != tensorrt_cache_key(b"model2", **base)  # type: ignore[arg-type]
    for field, other in (
        ("trt_version", "10.10.0"),
        ("gpu_name", "H100"),
        ("compute_capability", (9, 0)),
        ("precision", "fp32"),
        ("batch", (1, 8, 32)),
    ):
        assert key != tensorrt_cache_key(b"model", **{**base, field: other})  # type: ignore[arg-type]


def test_profile_shapes() -> None:
    assert profile_shapes((-1, 131), (1, 16, 32)) == ((1, 131), (16, 131), (32, 131))
    assert profile_shapes((4, 3), (1, 16, 32)) == ((4, 3), (4, 3), (4, 3))
    with pytest.raises(ValueError, match="only the batch"):
        profile_shapes((-1, -1), (1, 2, 3))
