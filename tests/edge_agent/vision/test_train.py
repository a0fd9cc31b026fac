"""The training script end to end on a small SYNTHETIC set: metrics, ONNX export, engine equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

import edge_agent.vision.make_dataset as make_dataset_cli
import edge_agent.vision.train as train_cli
from edge_agent.inference import OnnxRuntimeEngine
from edge_agent.vision import CHANNELS, LivenessPipeline, load_model_info

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

ATOL = 1e-4  # ONNX Runtime vs torch, on probabilities


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("train") / "ds"
    args = [str(out), "--clips", "8", "--seed", "5", "--frames", "6", "--width", "240", "--height", "180"]
    assert make_dataset_cli.main(args) == 0
    return out


def test_dataset_layout_is_labelled_synthetic(dataset: Path) -> None:
    info = json.loads((dataset / "dataset.json").read_text())
    assert info["synthetic"] is True
    assert info["clips"] == {"live": 8, "print": 2, "replay": 2, "print_hq": 2, "replay_hq": 2}
    assert "SYNTHETIC" in (dataset / "README.txt").read_text()
    assert len(list((dataset / "live").glob("*/frame_*.png"))) == 48
    assert info["source_images"][0]["name"] == "grace_hopper.jpg"


def test_train_export_and_serve(dataset: Path, tmp_path: Path) -> None:
    import torch

    from edge_agent.vision import TrainConfig, train_liveness

    config = TrainConfig(epochs=6, history=3, batch_size=16, learning_rate=5e-3)
    out = tmp_path / "model" / "liveness.onnx"
    result = train_liveness(dataset, out, rng=np.random.default_rng(5), config=config, seed=5)

    meta = json.loads(result.metadata_path.read_text())
    assert result.metadata_path == out.with_suffix(".json")
    assert meta["synthetic_data"] is True and meta["metrics"]["synthetic_data"] is True
    assert meta["input_shape"] == ["batch", len(CHANNELS), 64, 64] and meta["onnx"]["opset"] == 17
    assert meta["channel_layout"] == list(CHANNELS) and meta["threshold"] == 0.98
    assert meta["preprocessing"]["history"] == 3
    metrics = result.metrics
    for key in ("accuracy", "apcer", "bpcer", "acer", "auc", "eer", "accuracy_at_0.5"):
        assert key in metrics
    assert metrics["n_live"] > 0 and metrics["n_attack"] > 0 and metrics["split"] == "by clip"
    print("held-out metrics (SYNTHETIC):", json.dumps(metrics))
    assert metrics["accuracy_at_0.5"] > 0.6, metrics  # sanity floor only

    model = onnx.load(str(out))
    assert model.opset_import[0].version == 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    engine = OnnxRuntimeEngine(out, threads=1)
    x = np.random.default_rng(0).normal(0, 1, (5, len(CHANNELS), 64, 64)).astype(np.float32)
    got = engine.run({"input": x})["live_prob"]
    with torch.no_grad():
        want = result.model.probability(torch.from_numpy(x)).numpy()
    assert got.shape == (5, 1)
    np.testing.assert_allclose(got, want, atol=ATOL)
    assert meta["onnx_check"]["max_abs_diff_vs_torch"] <= ATOL

    pipe = LivenessPipeline.from_model(out)
    info = load_model_info(out)
    assert pipe.model_version == info.model_version == meta["model_version"]
    assert pipe.history.config.history == 3


def test_train_command_line(dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli.onnx"
    assert train_cli.main([str(dataset), "--out", str(out), "--epochs", "1", "--history", "3", "--seed", "1"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out.strip().splitlines()[-1])
    assert metrics["synthetic_data"] is True and 0.0 <= metrics["accuracy"] <= 1.0
    assert "SYNTHETIC held-out metrics" in captured.err
    assert out.is_file() and out.with_suffix(".json").is_file()
