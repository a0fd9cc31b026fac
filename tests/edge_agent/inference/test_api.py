"""Public surface of the inference and triage packages: ``__all__`` is real, and importing stays light."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("name", ["edge_agent.inference", "edge_agent.triage"])
def test_exported_members(name: str) -> None:
    module = importlib.import_module(name)
    assert len(module.__all__) == len(set(module.__all__))
    for member in module.__all__:
        assert hasattr(module, member), f"{name}.{member} is in __all__ but missing"
        assert not member.startswith("_")


def test_importing_loads_no_ml_library() -> None:
    code = (
        "import sys, edge_agent.inference, edge_agent.triage; "
        "print(','.join(m for m in ('torch', 'onnxruntime', 'onnx', 'tensorrt', 'pycuda') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == ""
