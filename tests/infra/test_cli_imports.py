"""``medkiosk --help`` and every command's help work with any one extra installed.

Each case runs the parser in a fresh interpreter in which the modules of the extras an image does not install
cannot be imported (``_cli_walk.py``), so a command module that imports a role's dependencies at the top fails
here. The per-image tests in ``test_images.py`` check the same with real venvs that hold only that image's
extras.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

WALK = Path(__file__).with_name("_cli_walk.py")
ROOT = Path(__file__).resolve().parents[2]

#: Top-level modules each extra brings (the ones our code imports).
EXTRA_MODULES = {
    "edge": {"serial", "serial_asyncio", "cv2", "numpy", "onnx", "onnxruntime"},
    "gpu": {"tensorrt", "pycuda"},
    "cloud": {"numpy", "phe", "gmpy2", "sklearn", "opacus", "torch", "matplotlib", "faststream", "fhir"},
    "durable": {"moto", "boto3"},
    "discovery": {"httpx", "consul"},
    "trainer": {"monai", "lightning", "transformers", "einops", "pydicom", "torchmetrics"},
    "autoscaler": {"kubernetes", "grpc"},
}
ALL = set().union(*EXTRA_MODULES.values())

#: What stays importable in each image: only its own extras' modules.
IMAGES = {
    "base": set(),
    "cloud": EXTRA_MODULES["cloud"],
    "edge-cpu": EXTRA_MODULES["edge"],
    "edge-jetson": EXTRA_MODULES["edge"] | EXTRA_MODULES["gpu"],
}

#: Commands every image must be able to describe (the ones compose, the manifests and the images start).
MUST_LIST = ["medkiosk", "gateway", "subscribe", "kiosk simulate", "edge", "topics apply", "keys export", "fl client"]


def _walk(blocked: set[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(WALK), ",".join(sorted(blocked))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_every_help_without_other_extras(image: str) -> None:
    proc = _walk(ALL - IMAGES[image])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    listed = proc.stdout.splitlines()
    for command in MUST_LIST:
        assert command in listed, f"{command!r} missing from the help walk:\n{proc.stdout}"


def test_blocker_catches_a_top_level_role_import() -> None:
    """The walk does fail when a command module imports a blocked module (so a green run means something)."""
    proc = _walk({"streams"})
    assert proc.returncode == 1
    assert "not installed in this image" in proc.stderr
