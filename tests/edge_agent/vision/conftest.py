"""Shared fixtures: a small SYNTHETIC dataset (generated once per session) and the real Grace Hopper photograph."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib import cbook

from edge_agent.vision import FaceDetector, make_synthetic_dataset


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    image = cv2.imread(str(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)))
    assert image is not None
    return image


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 live + 4 spoof clips of 6 frames (synthetic), shared by the read-only tests."""
    out = tmp_path_factory.mktemp("vision") / "ds"
    make_synthetic_dataset(out, clips=4, rng=np.random.default_rng(11), seed=11, frames=6)
    return out
