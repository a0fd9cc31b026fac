"""ONNX Runtime on tiny models exported here: matches torch, reports names and shapes, any batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import InferenceEngine, OnnxRuntimeEngine
from tests.edge_agent.inference.models import CNN, MLP, export_all, seeded, torch_reference

# float32 on the same CPU: differences are rounding in a different kernel order.
ATOL = 1e-5


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
@pytest.mark.parametrize("batch", [1, 7, 64])
def test_ort_matches_torch(tmp_path: Path, kind: str, batch: int) -> None:
    rng = np.random.default_rng(1)
    if kind == "mlp":
        module, shape = seeded(MLP(), 1), (12,)
    else:
        module, shape = seeded(CNN(), 2), (1, 8, 8)
    model = export_all(module, {"x": rng.standard_normal((3, *shape), dtype=np.float32)}, tmp_path, kind)
    engine = OnnxRuntimeEngine(model.onnx, threads=1)
    x = rng.standard_normal((batch, *shape), dtype=np.float32)
    out = engine.run({"x": x})["y"]
    np.testing.assert_allclose(out, torch_reference(module, x), atol=ATOL, rtol=0)
    engine.close()


def test_ort_info_and_errors(tmp_path: Path) -> None:
    module = seeded(MLP(), 3)
    model = export_all(module, {"x": np.zeros((2, 12), np.float32)}, tmp_path, "mlp")
    engine = OnnxRuntimeEngine(model.onnx)
    assert isinstance(engine, InferenceEngine)
    info = engine.info
    assert (info.kind, info.inputs, info.outputs, info.device, info.precision) == (
        "onnxruntime",
        ("x",),
        ("y",),
        "cpu",
        "fp32",
    )
    assert info.input_shapes == (("batch", 12),) and info.output_shapes == (("batch", 5),)
    with pytest.raises(ValueError, match="missing inputs"):
        engine.run({"z": np.zeros((1, 12), np.float32)})


async def test_ort_async(tmp_path: Path) -> None:
    module = seeded(MLP(), 4)
    model = export_all(module, {"x": np.zeros((2, 12), np.float32)}, tmp_path, "mlp")
    engine = OnnxRuntimeEngine(model.onnx)
    x = np.random.default_rng(5).standard_normal((4, 12), dtype=np.float32)
    out = await engine.run_async({"x": x})
    np.testing.assert_allclose(out["y"], torch_reference(module, x), atol=ATOL, rtol=0)
