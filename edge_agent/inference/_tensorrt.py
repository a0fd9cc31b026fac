"""TensorRT: build (or load a cached) engine from the ONNX file, run with pycuda on page-locked buffers.

Written against the TensorRT 10 Python API (10.0-10.x): ``Builder.create_network(0)`` (explicit batch is the
only mode in 10, the EXPLICIT_BATCH flag is deprecated and ignored), ``OnnxParser``, ``BuilderFlag.FP16``
(weak typing; deprecated since 10.12 and removed in TensorRT 11, where precision comes from the ONNX types),
one optimization profile for the dynamic batch, ``build_serialized_network``,
``Runtime.deserialize_cuda_engine``, the name-based I/O API (``num_io_tensors``, ``get_tensor_name``,
``get_tensor_mode``, ``get_tensor_profile_shape``), ``set_input_shape``/``set_tensor_address`` and
``execute_async_v3``. pycuda: primary context, ``Stream``, ``mem_alloc``, ``pagelocked_empty``,
``memcpy_htod_async``/``memcpy_dtoh_async``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edge_agent.inference._base import Dim, EngineInfo, EngineUnavailable, Tensor

__all__ = ["TensorRTEngine", "profile_shapes", "tensorrt_cache_key", "tensorrt_unavailable_reason"]

log = logging.getLogger(__name__)

ProfileShape = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]


def tensorrt_unavailable_reason() -> str | None:
    """Why the TensorRT engine cannot run here (package, driver or GPU missing), or None when it can."""
    import importlib.util

    for module, hint in (("tensorrt", "tensorrt"), ("pycuda", "pycuda")):
        if importlib.util.find_spec(module) is None:
            return f"the {hint} package is not installed (pip install 'medkiosk[gpu]' on a machine with a GPU)"
    try:
        import pycuda.driver as cuda
        import tensorrt  # noqa: F401

        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA device"
    except Exception as exc:  # a broken driver or library raises all sorts of errors
        return f"CUDA/TensorRT unusable: {exc}"
    return None


def tensorrt_cache_key(
    onnx_bytes: bytes,
    *,
    trt_version: str,
    gpu_name: str,
    compute_capability: tuple[int, int],
    precision: str,
    batch: tuple[int, int, int],
) -> str:
    """Serialized engines are only valid for one model, TensorRT version, GPU and build configuration."""
    h = hashlib.sha256()
    h.update(hashlib.sha256(onnx_bytes).digest())
    meta = {"trt": trt_version, "gpu": gpu_name, "cc": list(compute_capability), "precision": precision}
    h.update(json.dumps({**meta, "batch": list(batch)}, sort_keys=True).encode())
    return h.hexdigest()


def profile_shapes(shape: tuple[int, ...], batch: tuple[int, int, int]) -> ProfileShape:
    """(min, opt, max) for a network input: the leading dim spans ``batch``; any other dynamic dim is an error."""
    if not shape:
        raise ValueError("scalar network inputs are not supported")
    rest = shape[1:]
    if any(d < 0 for d in rest):
        raise ValueError(f"input shape {shape}: only the batch dimension may be dynamic")
    if shape[0] >= 0:  # fixed batch in the ONNX file: the profile is that one shape
        return shape, shape, shape
    lo, opt, hi = batch
    return (lo, *rest), (opt, *rest), (hi, *rest)


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class TensorRTEngine:
    """An ONNX model compiled by TensorRT for this GPU, cached on disk (``cache_dir``), FP16 by default.

    The serialized engine is keyed by a hash of the ONNX bytes, the TensorRT version, the GPU name and compute
    capability, the precision and the batch profile; a corrupt cache file is rebuilt. Buffers (device and
    page-locked host) are sized for ``max_batch`` once. Runs are serialized by a lock (one execution context);
    ``run_async`` waits for the stream in a worker thread.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        device_index: int = 0,
        precision: Literal["fp16", "fp32"] = "fp16",
        max_batch: int = 64,
        opt_batch: int | None = None,
        cache_dir: Path | None = None,
        workspace_bytes: int = 1 << 28,
    ) -> None:
        reason = tensorrt_unavailable_reason()
        if reason is not None:
            raise EngineUnavailable("tensorrt", reason)
        import pycuda.driver as cuda
        import tensorrt as trt

        self._trt, self._cuda = trt, cuda
        self._path = Path(model_path)
        self._batch = (1, opt_batch or max(1, max_batch // 2), max_batch)
        self._lock = threading.Lock()
        self._closed = False
        device = cuda.Device(device_index)
        self._ctx = device.retain_primary_context()  # share the CUDA runtime's context (torch etc.)
        self._ctx.push()
        self._device_buf: dict[str, Any] = {}
        try:
            onnx_bytes = self._path.read_bytes()
            self._precision: str = precision
            if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):  # TensorRT 11+: strongly typed only
                log.warning("TensorRT %s has no FP16 builder flag; using the ONNX file's types", trt.__version__)
                self._precision = "fp32"
            key = tensorrt_cache_key(
                onnx_bytes,
                trt_version=trt.__version__,
                gpu_name=device.name(),
                compute_capability=tuple(device.compute_capability()),
                precision=self._precision,
                batch=self._batch,
            )
            cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "medkiosk" / "tensorrt"
            self._logger = trt.Logger(trt.Logger.WARNING)
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._load_or_build(cache / f"{key}.plan", onnx_bytes, workspace_bytes)
            self._context = self._engine.create_execution_context()
            self._stream = cuda.Stream()
            self._setup_io()
        except BaseException:
            # A failed setup (a bad model update, an unbuildable network) frees what it allocated and lets go
            # of the primary context it retained; before, every failure leaked a context reference and buffers.
            self._free_partial()
            cuda.Context.pop()
            self._ctx.detach()
            raise
        cuda.Context.pop()
        self._info = EngineInfo(
            "tensorrt",
            self._path,
            self._inputs,
            self._outputs,
            f"cuda:{device_index}",
            self._precision,
            input_shapes=tuple(self._declared[n] for n in self._inputs),
            output_shapes=tuple(self._declared[n] for n in self._outputs),
            max_batch=min(self._max_shapes[n][0] for n in self._inputs) if self._inputs else None,
        )

    def _free_partial(self) -> None:
        """Free the device buffers and engine objects a failed setup made (the context is current)."""
        self._closed = True
        for buf in self._device_buf.values():
            try:
                buf.free()
            except Exception:  # noqa: S112 - best effort: the context is released right after regardless
                continue
        self._device_buf = {}
        for name in ("_context", "_engine", "_runtime", "_stream"):
            self.__dict__.pop(name, None)

    @property
    def info(self) -> EngineInfo:
        return self._info

    def _load_or_build(self, plan_path: Path, onnx_bytes: bytes, workspace_bytes: int) -> Any:
        if plan_path.exists():
            engine = self._runtime.deserialize_cuda_engine(plan_path.read_bytes())
            if engine is not None:
                return engine
            log.warning("cached TensorRT engine %s is unusable; rebuilding", plan_path)
        plan = self._build(onnx_bytes, workspace_bytes)
        _write_atomic(plan_path, plan)
        engine = self._runtime.deserialize_cuda_engine(plan)
        if engine is None:
            raise RuntimeError(f"TensorRT could not deserialize the engine it just built for {self._path}")
        return engine

    def _build(self, onnx_bytes: bytes, workspace_bytes: int) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network = builder.create_network(0)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(onnx_bytes):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {self._path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
        if self._precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            tensor = network.get_input(i)
            lo, opt, hi = profile_shapes(tuple(tensor.shape), self._batch)
            profile.set_shape(tensor.name, lo, opt, hi)
        config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError(f"TensorRT failed to build an engine for {self._path}")
        return bytes(plan)

    def _setup_io(self) -> None:
        trt, cuda, engine, ctx = self._trt, self._cuda, self._engine, self._context
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = tuple(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self._outputs = tuple(n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self._dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        self._declared: dict[str, tuple[Dim, ...]] = {
            n: tuple("batch" if d < 0 else int(d) for d in engine.get_tensor_shape(n)) for n in names
        }
        self._max_shapes: dict[str, tuple[int, ...]] = {}
        for n in self._inputs:
            self._max_shapes[n] = tuple(engine.get_tensor_profile_shape(n, 0)[2])
            ctx.set_input_shape(n, self._max_shapes[n])
        for n in self._outputs:  # with every input at its maximum, outputs report their maximum too
            self._max_shapes[n] = tuple(ctx.get_tensor_shape(n))
        self._host_buf = {}
        for n in names:
            count = int(np.prod(self._max_shapes[n]))
            self._host_buf[n] = cuda.pagelocked_empty(count, self._dtypes[n])
            self._device_buf[n] = cuda.mem_alloc(max(1, self._host_buf[n].nbytes))

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Run a batch; one larger than the profile's maximum (``info.max_batch``) runs in slices of that size,
        so a scaling command allowing bigger batches than the engine was built for cannot make it fail."""
        missing = set(self._inputs) - set(inputs)
        if missing:
            raise ValueError(f"missing inputs {sorted(missing)}; the model takes {list(self._inputs)}")
        limit = self._info.max_batch if hasattr(self, "_info") else None
        dynamic = all(self._declared[n][0] == "batch" for n in self._inputs)
        rows = {int(np.shape(inputs[n])[0]) for n in self._inputs if np.ndim(inputs[n])}
        if limit and dynamic and len(rows) == 1 and (total := rows.pop()) > limit:
            parts = [
                self._run_once({n: np.asarray(inputs[n])[i : i + limit] for n in self._inputs})
                for i in range(0, total, limit)
            ]
            return {n: np.concatenate([p[n] for p in parts]) for n in self._outputs}
        return self._run_once(inputs)

    def _run_once(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        cuda, ctx, stream = self._cuda, self._context, self._stream
        with self._lock:
            if self._closed:
                raise RuntimeError("engine is closed")
            self._ctx.push()
            try:
                for n in self._inputs:
                    arr = np.ascontiguousarray(inputs[n], dtype=self._dtypes[n])
                    limit = self._max_shapes[n]
                    if arr.ndim != len(limit) or any(a > m for a, m in zip(arr.shape, limit, strict=True)):
                        raise ValueError(f"input {n!r} shape {arr.shape} exceeds the engine profile {limit}")
                    host = self._host_buf[n][: arr.size]
                    np.copyto(host, arr.ravel())
                    cuda.memcpy_htod_async(self._device_buf[n], host, stream)
                    ctx.set_input_shape(n, arr.shape)
                for n in (*self._inputs, *self._outputs):
                    ctx.set_tensor_address(n, int(self._device_buf[n]))
                if not ctx.execute_async_v3(stream_handle=stream.handle):
                    raise RuntimeError("TensorRT execute_async_v3 failed")
                shapes = {n: tuple(ctx.get_tensor_shape(n)) for n in self._outputs}
                views = {}
                for n, shape in shapes.items():
                    views[n] = self._host_buf[n][: int(np.prod(shape))]
                    cuda.memcpy_dtoh_async(views[n], self._device_buf[n], stream)
                stream.synchronize()
                # Copies: the page-locked buffers are reused by the next run.
                return {n: views[n].reshape(shapes[n]).astype(np.float32, copy=True) for n in self._outputs}
            finally:
                self._cuda.Context.pop()

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        # stream.synchronize() blocks: it runs in a worker thread, never on the event loop.
        return await asyncio.to_thread(self.run, inputs)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._ctx.push()
            try:
                self._stream.synchronize()
                for buf in self._device_buf.values():
                    buf.free()
                self._device_buf.clear()
                self._host_buf.clear()
                del self._context, self._engine
            finally:
                self._cuda.Context.pop()
                self._ctx.detach()
