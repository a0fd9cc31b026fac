from __future__ import annotations

from pathlib import Path

import pytest

from tests.streams.multimodal.helpers import make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def synthetic_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthetic cases of 40x40x10 voxels; returns the manifest."""
    from cloud_workers.trainer import SyntheticConfig, generate_synthetic

    return generate_synthetic(tmp_path_factory.mktemp("syn-small"), SyntheticConfig(cases=8, size=(40, 40, 10)))
