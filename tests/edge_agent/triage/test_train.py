"""The training script runs on the shipped graph (a few seeded epochs), exports ONNX/.pt2/.pt that agree
with torch, reports held-out accuracy on SYNTHETIC presentations, and is reproducible."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from edge_agent.inference import OnnxRuntimeEngine, load_torch_program
from edge_agent.inference._torch_program import call_program
from edge_agent.triage import TriageVocab, load_graph
from edge_agent.triage._synthetic import generate_presentations
from edge_agent.triage._train import TrainConfig, TrainResult, train

QUICK = TrainConfig(seed=3, epochs=3, train_per_condition=60, test_per_condition=30, batch_size=256)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(tmp_path_factory.mktemp("triage"), QUICK)


def test_exports_agree_with_torch(trained: TrainResult) -> None:
    graph = load_graph()
    x = generate_presentations(graph, 3, np.random.default_rng(0)).x
    with torch.inference_mode():
        expected = trained.model(torch.from_numpy(x)).numpy()
    ort = OnnxRuntimeEngine(trained.files["onnx"])
    assert ort.info.inputs == ("symptoms",) and ort.info.outputs == ("department_scores",)
    assert ort.info.input_shapes == (("batch", len(graph.symptoms)),)
    got = ort.run({"symptoms": x})["department_scores"]
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-5)  # department probabilities
    for key in ("torch_export", "torchscript"):
        program = load_torch_program(trained.files[key])
        assert program.inputs == ("symptoms",) and program.outputs == ("department_scores",)
        with torch.inference_mode():
            (out,) = call_program(program, [torch.from_numpy(x)])
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-5, rtol=0)


def test_metrics_are_reported_and_above_chance(trained: TrainResult) -> None:
    m = trained.metrics
    assert m["heldout_presentations"] > 0
    for key in ("heldout_top1", "heldout_top3", "test_top1", "test_top3"):
        assert 0.0 <= m[key] <= 1.0
    # Sanity floor only (three short epochs): well above always answering the most common department.
    assert m["heldout_top1"] > 2 * m["majority_class_top1"]
    assert m["heldout_top3"] > m["heldout_top1"]
    vocab = TriageVocab.load(trained.files["vocab"])
    assert vocab.synthetic["training_presentations"] is True
    assert vocab.metrics == m and vocab.model_version.startswith("1.0.0+g")
    assert len(vocab.symptoms) == len(load_graph().symptoms)


def test_training_is_reproducible(trained: TrainResult, tmp_path: Path) -> None:
    again = train(tmp_path, QUICK)
    for name, tensor in trained.model.state_dict().items():
        torch.testing.assert_close(again.model.state_dict()[name], tensor, rtol=0, atol=0)
    drop = {"train_seconds"}
    assert {k: v for k, v in again.metrics.items() if k not in drop} == {
        k: v for k, v in trained.metrics.items() if k not in drop
    }


@pytest.mark.slow
def test_command_line_entry_point(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_agent.triage.train",
            "--out",
            str(tmp_path),
            "--epochs",
            "1",
            "--train-per-condition",
            "20",
            "--seed",
            "5",
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=170,
    )
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["model_version"].endswith(".s5")
    assert {p.name for p in tmp_path.iterdir()} == {
        "triage-kg.onnx",
        "triage-kg.pt2",
        "triage-kg.pt",
        "triage-kg.vocab.json",
    }
