"""The torch files the Torch CUDA engine loads (.pt2 via torch.export, .pt via TorchScript), checked on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edge_agent.inference import load_torch_program
from edge_agent.inference._torch_program import call_program
from tests.edge_agent.inference.models import CNN, MLP, export_all, seeded, torch_reference


@pytest.mark.parametrize("suffix", ["pt2", "pt"])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_program_round_trip(tmp_path: Path, suffix: str, kind: str) -> None:
    rng = np.random.default_rng(7)
    module, shape = (seeded(MLP(), 7), (12,)) if kind == "mlp" else (seeded(CNN(), 8), (1, 8, 8))
    model = export_all(module, {"x": rng.standard_normal((2, *shape), dtype=np.float32)}, tmp_path, kind)
    program = load_torch_program(model.pt2 if suffix == "pt2" else model.pt)
    assert program.inputs == ("x",) and program.outputs == ("y",)
    assert program.input_shapes == (("batch", *shape),)
    assert program.format == ("torch.export" if suffix == "pt2" else "torchscript")
    for batch in (1, 5, 33):  # the batch dimension is dynamic in both formats
        x = rng.standard_normal((batch, *shape), dtype=np.float32)
        with torch.inference_mode():
            (out,) = call_program(program, [torch.from_numpy(x)])
        np.testing.assert_allclose(out.numpy(), torch_reference(module, x), atol=1e-5, rtol=0)


def test_program_casts_to_a_lower_precision(tmp_path: Path) -> None:
    """What the CUDA engine does with fp16, done with bfloat16 on CPU: same answers within low precision."""
    module = seeded(MLP(), 9)
    model = export_all(module, {"x": np.zeros((2, 12), np.float32)}, tmp_path, "mlp")
    program = load_torch_program(model.pt2, dtype=torch.bfloat16)
    x = np.random.default_rng(9).standard_normal((4, 12), dtype=np.float32)
    with torch.inference_mode():
        (out,) = call_program(program, [torch.from_numpy(x).to(torch.bfloat16)])
    np.testing.assert_allclose(out.float().numpy(), torch_reference(module, x), atol=0.1, rtol=0)


def test_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"expected a torch\.export"):
        load_torch_program(tmp_path / "model.onnx")
