"""The public surface of edge_agent.vision, and that importing it stays light (no torch, OpenCV, ONNX Runtime)."""

from __future__ import annotations

import json
import subprocess
import sys

import edge_agent.vision as vision


def test_exported_members() -> None:
    exported = vision.__all__
    assert len(exported) == len(set(exported)), "duplicates in __all__"
    for member in exported:
        assert hasattr(vision, member), f"edge_agent.vision.{member} is in __all__ but missing"
        assert not member.startswith("_")
    for member in ("open_source", "FaceDetector", "LivenessPipeline", "train_liveness", "GhostLivenessNet"):
        assert member in exported


def test_import_is_light() -> None:
    code = (
        "import json, sys, edge_agent.vision; "
        "print(json.dumps([m for m in ('torch', 'cv2', 'onnxruntime', 'matplotlib') if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert json.loads(out) == []
