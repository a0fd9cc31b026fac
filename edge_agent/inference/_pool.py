"""N asyncio workers in front of one engine, with dynamic batching and runtime resizing.

Callers ``await pool.submit(inputs)``. A worker takes the oldest request, then keeps taking compatible ones
(same input names, trailing shapes and dtypes) until the batch holds ``max_batch`` rows or ``batch_window_s``
has passed, runs the batch through ``engine.run_async`` and hands each caller its rows. ``resize`` and
``set_max_batch`` apply while requests are flowing (cloud scaling commands call them); a retired worker
finishes the batch it holds first, and requests wait in the queue, so nothing is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from edge_agent.inference._base import InferenceEngine, Tensor
from edge_agent.inference._batching import Signature, batch_rows, batch_signature, concat_requests, split_outputs

__all__ = ["InferenceWorkerPool", "PoolStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot: sizes, counters since start, and latency (submit to result) over the recent window."""

    workers: int
    max_batch: int
    queue_depth: int
    max_queue_depth: int
    in_flight: int
    submitted: int
    completed: int
    failed: int
    batches: int
    mean_batch_rows: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None


@dataclass(slots=True)
class _Request:
    inputs: Mapping[str, Tensor]
    rows: int
    signature: Signature
    future: asyncio.Future[dict[str, Tensor]]
    enqueued: float


class InferenceWorkerPool:
    """``workers`` coroutines pulling from one queue in front of ``engine`` (usually a ``HotSwapEngine``)."""

    def __init__(
        self,
        engine: InferenceEngine,
        *,
        workers: int = 1,
        max_batch: int = 1,
        batch_window_s: float = 0.002,
        max_queue: int | None = None,
        latency_window: int = 4096,
    ) -> None:
        self._check(workers=workers, max_batch=max_batch)
        self.engine = engine
        self._target = workers
        self._max_batch = max_batch
        self._window = batch_window_s
        self._max_queue = max_queue
        self._pending: deque[_Request] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()  # set when nothing is queued or held by a worker
        self._idle.set()
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._retiring: set[int] = set()
        self._ids = itertools.count()
        self._started = False
        self._latencies: deque[float] = deque(maxlen=latency_window)
        self._in_flight = self._submitted = self._completed = self._failed = 0
        self._batches = self._batch_rows_total = self._max_depth = 0

    @staticmethod
    def _check(*, workers: int = 1, max_batch: int = 1) -> None:
        if workers < 1:
            raise ValueError("a pool needs at least one worker")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")

    # -- lifecycle -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self._started = True
        self._reconcile()

    async def stop(self, *, drain: bool = True) -> None:
        """Stop the workers; with ``drain`` first serve everything queued, else fail what is still queued.
        New submissions are refused from the moment ``stop`` is called."""
        self._started = False
        if drain:
            await self._idle.wait()
        else:
            while self._pending:
                req = self._pending.popleft()
                if not req.future.done():
                    req.future.set_exception(RuntimeError("pool stopped"))
        tasks = list(self._tasks.values())
        self._retiring.update(self._tasks)
        self._wake.set()
        for task in tasks:
            if not drain:
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> InferenceWorkerPool:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop(drain=exc is None)

    # -- runtime control -----------------------------------------------------------------------------------

    @property
    def workers(self) -> int:
        return self._target

    @property
    def max_batch(self) -> int:
        """Rows per batch in effect: the requested maximum, capped by the engine's own (``info.max_batch``)."""
        cap = self.engine.info.max_batch
        return min(self._max_batch, cap) if cap else self._max_batch

    def resize(self, workers: int) -> None:
        """Run ``workers`` workers from now on (a retired worker first finishes its current batch)."""
        self._check(workers=workers)
        self._target = workers
        if self._started:
            self._reconcile()

    def set_max_batch(self, n: int) -> None:
        """Batches formed from now on hold at most ``n`` rows (a single larger request still runs alone), or
        the engine's own maximum when that is smaller (a TensorRT profile; a warning says so)."""
        self._check(max_batch=n)
        self._max_batch = n
        cap = self.engine.info.max_batch
        if cap and n > cap:
            log.warning(
                "max_batch %d exceeds the %s engine's maximum of %d; batching %d", n, self.engine.info.kind, cap, cap
            )

    def _reconcile(self) -> None:
        active = sorted(i for i in self._tasks if i not in self._retiring)
        for wid in active[self._target :]:  # retire the newest first
            self._retiring.add(wid)
        for _ in range(self._target - len(active)):
            wid = next(self._ids)
            task = asyncio.get_running_loop().create_task(self._worker(wid), name=f"inference-worker-{wid}")
            self._tasks[wid] = task
            task.add_done_callback(functools.partial(self._worker_done, wid))
        self._wake.set()

    def _worker_done(self, wid: int, task: asyncio.Task[None]) -> None:
        self._tasks.pop(wid, None)
        self._retiring.discard(wid)
        if not task.cancelled() and task.exception() is not None:
            log.error("inference worker %d died", wid, exc_info=task.exception())

    # -- requests ------------------------------------------------------------------------------------------

    async def submit(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Queue one request (any number of rows) and wait for its outputs."""
        if not self._started:
            raise RuntimeError("pool is not running (call start() or use 'async with')")
        if self._max_queue is not None and len(self._pending) >= self._max_queue:
            raise asyncio.QueueFull(f"{len(self._pending)} requests already queued")
        loop = asyncio.get_running_loop()
        req = _Request(inputs, batch_rows(inputs), batch_signature(inputs), loop.create_future(), time.perf_counter())
        self._pending.append(req)
        self._idle.clear()
        self._submitted += 1
        self._max_depth = max(self._max_depth, len(self._pending))
        self._wake.set()
        return await req.future

    def _take(self, batch: list[_Request], rows: int) -> int:
        """Move compatible requests from the head of the queue into ``batch`` while they fit."""
        while self._pending:
            head = self._pending[0]
            if batch and (head.signature != batch[0].signature or rows + head.rows > self.max_batch):
                break
            self._pending.popleft()
            if head.future.done():  # the caller gave up (cancelled): skip it
                self._check_idle()
                continue
            batch.append(head)
            self._in_flight += 1  # held by this worker from now on (counts for stop(drain=True))
            rows += head.rows
            if rows >= self.max_batch:
                break
        return rows

    async def _collect(self) -> list[_Request]:
        batch: list[_Request] = []
        rows = self._take(batch, 0)
        if not batch or rows >= self.max_batch or self._window <= 0:
            return batch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._window
        while rows < self.max_batch and not self._pending:  # queue empty: wait a little for company
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), remaining)
            rows = self._take(batch, rows)
        return batch

    async def _worker(self, wid: int) -> None:
        while wid not in self._retiring:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = await self._collect()
            if batch:
                await self._execute(batch)

    def _check_idle(self) -> None:
        if not self._pending and not self._in_flight:
            self._idle.set()

    async def _execute(self, batch: list[_Request]) -> None:
        try:
            merged, sizes = concat_requests([r.inputs for r in batch])
            outputs = await self.engine.run_async(merged)
            parts = split_outputs(outputs, sizes)
        except asyncio.CancelledError:  # stop(drain=False): the callers must not wait forever
            for req in batch:
                if not req.future.done():
                    req.future.set_exception(RuntimeError("pool stopped"))
            raise
        except Exception as exc:
            for req in batch:
                self._failed += 1
                if not req.future.done():
                    req.future.set_exception(exc)
        else:
            now = time.perf_counter()
            for req, part in zip(batch, parts, strict=True):
                self._completed += 1
                self._latencies.append(now - req.enqueued)
                if not req.future.done():
                    req.future.set_result(part)
            self._batches += 1
            self._batch_rows_total += sum(sizes)
        finally:
            self._in_flight -= len(batch)
            self._check_idle()

    def stats(self) -> PoolStats:
        lat = np.fromiter(self._latencies, dtype=np.float64) * 1000.0
        p50, p99 = (float(np.percentile(lat, 50)), float(np.percentile(lat, 99))) if lat.size else (None, None)
        return PoolStats(
            workers=len([i for i in self._tasks if i not in self._retiring]),
            max_batch=self.max_batch,
            queue_depth=len(self._pending),
            max_queue_depth=self._max_depth,
            in_flight=self._in_flight,
            submitted=self._submitted,
            completed=self._completed,
            failed=self._failed,
            batches=self._batches,
            mean_batch_rows=self._batch_rows_total / self._batches if self._batches else 0.0,
            latency_p50_ms=p50,
            latency_p99_ms=p99,
        )
