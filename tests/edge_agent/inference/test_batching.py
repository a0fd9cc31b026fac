"""Batch plumbing: concatenating requests and splitting outputs back, signatures, deterministic probes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import EngineInfo, batch_rows, concat_requests, probe_inputs, split_outputs


def test_concat_and_split_round_trip() -> None:
    rng = np.random.default_rng(0)
    requests = [{"x": rng.random((n, 4), dtype=np.float32)} for n in (1, 3, 2)]
    merged, sizes = concat_requests(requests)
    assert sizes == [1, 3, 2] and merged["x"].shape == (6, 4)
    parts = split_outputs({"y": merged["x"] * 2}, sizes)
    for req, part in zip(requests, parts, strict=True):
        np.testing.assert_array_equal(part["y"], req["x"] * 2)


def test_incompatible_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot share a batch"):
        concat_requests([{"x": np.zeros((1, 4), np.float32)}, {"x": np.zeros((1, 5), np.float32)}])
    with pytest.raises(ValueError, match="disagree"):
        batch_rows({"a": np.zeros((2, 1)), "b": np.zeros((3, 1))})
    with pytest.raises(ValueError, match="leading batch"):
        batch_rows({"a": np.float32(1.0)})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="expected a leading batch of 3"):
        split_outputs({"y": np.zeros((2, 1))}, [1, 2])


def test_probe_is_deterministic_and_shaped() -> None:
    info = EngineInfo("onnxruntime", Path("m.onnx"), ("x",), ("y",), "cpu", "fp32", (("batch", 3, 2),), ())
    a, b = probe_inputs(info), probe_inputs(info)
    assert a["x"].shape == (2, 3, 2) and a["x"].dtype == np.float32
    np.testing.assert_array_equal(a["x"], b["x"])
    assert np.all((a["x"] >= 0) & (a["x"] < 1))
    with pytest.raises(ValueError, match="does not declare"):
        probe_inputs(EngineInfo("x", Path("m"), ("x",), ("y",), "cpu", "fp32"))
