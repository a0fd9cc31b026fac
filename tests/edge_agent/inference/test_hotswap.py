"""Hot swap under load: version 1 -> 2 while many requests run; bad new versions are rejected."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import HotSwapEngine, InferenceEngine, OnnxRuntimeEngine, SwapRejected, export_onnx
from tests.edge_agent.inference.models import MLP, Constant, SlowEngine, export_all

X = np.ones((1, 4), np.float32)


def constant_model(directory: Path, value: float, n_in: int = 4) -> Path:
    return export_all(Constant(n_in, value), {"x": np.zeros((2, n_in), np.float32)}, directory, f"c{value}").onnx


def slow_factory(engines: list[SlowEngine], delay: float = 0.005) -> Callable[[Path], InferenceEngine]:
    def load(path: Path) -> InferenceEngine:
        engine = SlowEngine(OnnxRuntimeEngine(path), delay)
        engines.append(engine)
        return engine

    return load


async def test_swap_under_load_drops_nothing_and_switches_versions(tmp_path: Path) -> None:
    v1, v2 = constant_model(tmp_path, 1.0), constant_model(tmp_path, 2.0)
    engines: list[SlowEngine] = []
    factory = slow_factory(engines)
    hot = HotSwapEngine(factory(v1), version="1", factory=factory)
    results: list[tuple[float, str, float]] = []  # (started, version, value)
    stop = asyncio.Event()

    async def client() -> None:
        while not stop.is_set():
            started = time.monotonic()
            out, version = await hot.run_async_with_version({"x": X})
            results.append((started, version, float(out["y"][0, 0])))

    clients = [asyncio.create_task(client()) for _ in range(24)]
    await asyncio.sleep(0.15)
    assert await hot.swap(v2, version="2") == "1"
    swapped_at = time.monotonic()
    await asyncio.sleep(0.15)
    stop.set()
    await asyncio.gather(*clients)  # any failed request would raise here

    assert hot.version == "2" and hot.swaps == 1
    assert {v for _, v, _ in results} == {"1", "2"}
    assert all(value == {"1": 1.0, "2": 2.0}[version] for _, version, value in results)
    assert all(version == "2" for started, version, _ in results if started > swapped_at)
    old, new = engines[0], engines[1]
    assert old.max_inflight > 1  # requests really were in flight on v1
    assert old.closed and not old.closed_with_inflight  # closed only after its last request finished
    assert not new.closed
    hot.close()
    assert new.closed


@pytest.mark.parametrize("problem", ["corrupt", "shape", "nan", "missing"])
async def test_bad_versions_are_rejected_and_v1_keeps_serving(tmp_path: Path, problem: str) -> None:
    v1 = constant_model(tmp_path, 1.0)
    if problem == "corrupt":
        bad = tmp_path / "corrupt.onnx"
        bad.write_bytes(b"\x08\x07 definitely not a protobuf model")
    elif problem == "shape":
        bad = constant_model(tmp_path / "wide", 2.0, n_in=6)
    elif problem == "nan":
        bad = constant_model(tmp_path / "nan", float("nan"))
    else:
        bad = tmp_path / "missing.onnx"
    hot = HotSwapEngine(SlowEngine(OnnxRuntimeEngine(v1), 0.002), version="1")
    stop = asyncio.Event()
    served: list[float] = []

    async def client() -> None:
        while not stop.is_set():
            served.append(float((await hot.run_async({"x": X}))["y"][0, 0]))

    clients = [asyncio.create_task(client()) for _ in range(8)]
    await asyncio.sleep(0.05)
    with pytest.raises(SwapRejected) as rejected:
        await hot.swap(bad, version="2")
    await asyncio.sleep(0.05)
    stop.set()
    await asyncio.gather(*clients)
    assert rejected.value.version == "2" and rejected.value.reason
    assert hot.version == "1" and hot.rejections == 1
    assert served and set(served) == {1.0}
    assert float(hot.run({"x": X})["y"][0, 0]) == 1.0


async def test_swap_checks_names_and_uses_the_given_probe(tmp_path: Path) -> None:
    v1 = constant_model(tmp_path, 1.0)
    renamed = tmp_path / "renamed"
    renamed.mkdir()
    other = export_onnx(MLP(4, 3), {"features": np.zeros((2, 4), np.float32)}, renamed / "m.onnx", output_names=["y"])
    hot = HotSwapEngine(OnnxRuntimeEngine(v1), version="1")
    with pytest.raises(SwapRejected, match="inputs"):
        await hot.swap(other, version="2")
    probe = {"x": np.full((3, 4), 0.5, np.float32)}
    assert await hot.swap(constant_model(tmp_path / "v3", 3.0), version="3", probe=probe) == "1"
    assert float(hot.run({"x": X})["y"][0, 0]) == 3.0


async def test_closed_engine_refuses_requests(tmp_path: Path) -> None:
    hot = HotSwapEngine(OnnxRuntimeEngine(constant_model(tmp_path, 1.0)), version="1")
    hot.close()
    with pytest.raises(RuntimeError, match="closed"):
        await hot.run_async({"x": X})
    with pytest.raises(RuntimeError, match="closed"):
        await hot.swap(tmp_path / "c1.0.onnx", version="2")
