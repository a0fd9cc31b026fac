"""The worker pool: dynamic batching returns each caller its own rows; resizing and batch-size changes under
load lose nothing; engine errors reach the callers; a hot swap through the pool drops nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from edge_agent.inference import HotSwapEngine, InferenceWorkerPool, OnnxRuntimeEngine
from tests.edge_agent.inference.models import MLP, Constant, Exported, SlowEngine, export_all, seeded


@pytest.fixture
def mlp(tmp_path: Path) -> Exported:
    return export_all(seeded(MLP(), 31), {"x": np.zeros((2, 12), np.float32)}, tmp_path, "mlp")


def requests(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((int(rng.integers(1, 3)), 12), dtype=np.float32) for _ in range(n)]


async def test_batching_returns_each_caller_its_rows(mlp: Exported) -> None:
    reference = OnnxRuntimeEngine(mlp.onnx)
    slow = SlowEngine(OnnxRuntimeEngine(mlp.onnx), delay=0.01)
    xs = requests(120, seed=1)
    async with InferenceWorkerPool(slow, workers=1, max_batch=16, batch_window_s=0.005) as pool:
        outs = await asyncio.gather(*(pool.submit({"x": x}) for x in xs))
        stats = pool.stats()
    for x, out in zip(xs, outs, strict=True):
        np.testing.assert_allclose(out["y"], reference.run({"x": x})["y"], atol=1e-5, rtol=0)
    assert stats.completed == 120 and stats.failed == 0 and stats.queue_depth == 0
    assert max(slow.batch_sizes) > 1 and max(slow.batch_sizes) <= 16  # requests were really batched
    assert stats.mean_batch_rows > 1 and stats.batches < 120
    assert stats.latency_p50_ms is not None and stats.latency_p99_ms is not None
    assert stats.latency_p99_ms >= stats.latency_p50_ms > 0


async def test_resize_and_max_batch_under_load_lose_nothing(mlp: Exported) -> None:
    reference = OnnxRuntimeEngine(mlp.onnx)
    slow = SlowEngine(OnnxRuntimeEngine(mlp.onnx), delay=0.003)
    xs = requests(600, seed=2)
    pool = InferenceWorkerPool(slow, workers=2, max_batch=4, batch_window_s=0.001)
    await pool.start()
    seen_workers: list[int] = []

    async def scale() -> None:
        for workers, max_batch in ((4, 8), (1, 1), (3, 2), (1, 16), (5, 4), (2, 1)):
            await asyncio.sleep(0.03)
            pool.resize(workers)
            pool.set_max_batch(max_batch)
            await asyncio.sleep(0.01)
            seen_workers.append(pool.stats().workers)

    async def submit_all() -> list[dict[str, np.ndarray]]:
        tasks = []
        for i, x in enumerate(xs):
            tasks.append(asyncio.create_task(pool.submit({"x": x})))
            if i % 20 == 0:
                await asyncio.sleep(0.002)  # a steady stream rather than one burst
        return await asyncio.gather(*tasks)

    outs, _ = await asyncio.gather(submit_all(), scale())
    await pool.stop()
    for x, out in zip(xs, outs, strict=True):
        np.testing.assert_allclose(out["y"], reference.run({"x": x})["y"], atol=1e-5, rtol=0)
    stats = pool.stats()
    assert stats.submitted == stats.completed == 600 and stats.failed == 0
    assert stats.queue_depth == 0 and stats.in_flight == 0
    assert seen_workers == [4, 1, 3, 1, 5, 2]
    assert slow.max_inflight >= 2  # several workers really ran at once


async def test_engine_errors_reach_every_caller(mlp: Exported) -> None:
    failing = SlowEngine(OnnxRuntimeEngine(mlp.onnx), delay=0.0, fail=True)
    async with InferenceWorkerPool(failing, workers=2, max_batch=4) as pool:
        results = await asyncio.gather(*(pool.submit({"x": x}) for x in requests(10, seed=3)), return_exceptions=True)
        assert pool.stats().failed == 10
    assert all(isinstance(r, RuntimeError) and "engine failure" in str(r) for r in results)


async def test_mixed_shapes_are_batched_separately(tmp_path: Path) -> None:
    wide = export_all(Constant(6, 1.0), {"x": np.zeros((2, 6), np.float32)}, tmp_path / "w", "c").onnx
    engine = OnnxRuntimeEngine(wide)
    async with InferenceWorkerPool(engine, workers=1, max_batch=8, batch_window_s=0.002) as pool:
        good = [asyncio.create_task(pool.submit({"x": np.zeros((1, 6), np.float32)})) for _ in range(3)]
        bad = asyncio.create_task(pool.submit({"x": np.zeros((1, 4), np.float32)}))  # wrong width: fails alone
        good += [asyncio.create_task(pool.submit({"x": np.zeros((1, 6), np.float32)})) for _ in range(3)]
        outs = await asyncio.gather(*good)
        with pytest.raises(Exception, match=r"(?i)dimension|shape|invalid"):
            await bad
    assert all(out["y"].shape == (1, 3) for out in outs)


async def test_stop_without_drain_fails_queued_requests(mlp: Exported) -> None:
    slow = SlowEngine(OnnxRuntimeEngine(mlp.onnx), delay=0.05)
    pool = InferenceWorkerPool(slow, workers=1, max_batch=1)
    await pool.start()
    tasks = [asyncio.create_task(pool.submit({"x": x})) for x in requests(5, seed=4)]
    await asyncio.sleep(0.01)
    await pool.stop(drain=False)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "stopped" in str(r) for r in results)
    with pytest.raises(RuntimeError, match="not running"):
        await pool.submit({"x": requests(1)[0]})
    with pytest.raises(ValueError):
        pool.resize(0)
    with pytest.raises(ValueError):
        pool.set_max_batch(0)


async def test_hot_swap_through_the_pool_drops_nothing(tmp_path: Path) -> None:
    v1 = export_all(Constant(4, 1.0), {"x": np.zeros((2, 4), np.float32)}, tmp_path / "v1", "c").onnx
    v2 = export_all(Constant(4, 2.0), {"x": np.zeros((2, 4), np.float32)}, tmp_path / "v2", "c").onnx
    hot = HotSwapEngine(
        SlowEngine(OnnxRuntimeEngine(v1), 0.004),
        version="1",
        factory=lambda p: SlowEngine(OnnxRuntimeEngine(p), 0.004),
    )
    async with InferenceWorkerPool(hot, workers=3, max_batch=8) as pool:
        x = np.ones((1, 4), np.float32)
        first = [asyncio.create_task(pool.submit({"x": x})) for _ in range(300)]
        await asyncio.sleep(0.02)
        await hot.swap(v2, version="2")
        after = [asyncio.create_task(pool.submit({"x": x})) for _ in range(50)]
        outs = await asyncio.gather(*first, *after)
    values = [float(o["y"][0, 0]) for o in outs]
    assert set(values) <= {1.0, 2.0} and 1.0 in values
    assert all(v == 2.0 for v in values[300:])
