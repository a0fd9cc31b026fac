"""Training from a trace CSV writes versioned checkpoints that load back to the same forecaster;
anything else at that path is refused, never executed."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cloud_workers.autoscaler import (
    CheckpointError,
    TrainOptions,
    checkpoint_versions,
    latest_checkpoint,
    load_checkpoint,
    train_from_trace,
)


def write_trace(path: Path, days: int = 12, per_day: int = 24) -> Path:
    rng = np.random.default_rng(1)
    lines = ["DateTime,Calls"]
    for d in range(days):
        for i in range(per_day):
            count = int(50 + 40 * np.sin(np.pi * i / per_day) ** 2 + rng.integers(0, 5))
            lines.append(f"2003-03-{d + 1:02d}T{7 + i // 12:02d}:{(i % 12) * 5:02d}:00Z,{count}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    root = tmp_path_factory.mktemp("ckpt")
    opts = TrainOptions(
        trace=write_trace(root / "t.csv"), out_dir=root / "models", epochs=3, hidden=8, window=12, test_days=2
    )
    return root, train_from_trace(opts)


def test_versions_and_round_trip(trained: tuple[Path, dict[str, float]]) -> None:
    root, report = trained
    path = Path(str(report["checkpoint"]))
    assert path.name == "forecaster-v0001.pt"
    lstm = load_checkpoint(path)
    assert lstm.cfg.season == 24 and lstm.cfg.hidden == 8 and lstm.model_version.startswith("v1-")
    series = np.linspace(40, 90, 200)
    origins = np.array([50, 120], dtype=np.int64)
    again = load_checkpoint(path)
    assert np.array_equal(lstm.predict_batch(series, origins), again.predict_batch(series, origins))
    # A second training run is the next version; the newest is what the service loads.
    opts = TrainOptions(trace=root / "t.csv", out_dir=root / "models", epochs=1, hidden=8, window=12, test_days=2)
    second = train_from_trace(opts)
    assert [v for v, _ in checkpoint_versions(root / "models")] == [1, 2]
    assert latest_checkpoint(root / "models") == Path(str(second["checkpoint"]))
    assert {"mae_lstm", "mae_last_value", "mae_seasonal_naive"} <= set(report)


class Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("code ran",))


def test_hostile_files_are_refused(tmp_path: Path, trained: tuple[Path, dict[str, float]]) -> None:
    evil = tmp_path / "forecaster-v0009.pt"
    evil.write_bytes(pickle.dumps({"format": "x", "obj": Boom()}))
    with pytest.raises(CheckpointError):
        load_checkpoint(evil)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError):
        load_checkpoint(junk)
    wrong = tmp_path / "wrong.pt"
    torch.save({"format": "something-else/1"}, wrong)
    with pytest.raises(CheckpointError):
        load_checkpoint(wrong)
    # Right format, weights that do not fit the config.
    good = torch.load(Path(str(trained[1]["checkpoint"])), weights_only=True)
    good["config"]["hidden"] = 16
    bad = tmp_path / "bad.pt"
    torch.save(good, bad)
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
    good["config"]["hidden"] = 8
    good["config"]["evil"] = 1
    torch.save(good, bad)
    with pytest.raises(CheckpointError):
        load_checkpoint(bad)
