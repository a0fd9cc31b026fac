"""Inference engines behind one interface: ONNX Runtime (CPU, default), Torch CUDA and TensorRT (GPU).

``create_engine("auto", path)`` picks the best engine available here (``available_engines()`` says why the
others are not); ``HotSwapEngine`` replaces model versions under load; ``InferenceWorkerPool`` batches
requests across a resizable set of asyncio workers. Importing this package imports no ML library.
"""

from edge_agent.inference._base import Dim, EngineInfo, EngineUnavailable, InferenceEngine, Tensor, run_in_thread
from edge_agent.inference._batching import batch_rows, concat_requests, probe_inputs, split_outputs
from edge_agent.inference._factory import AUTO_ORDER, EngineKind, available_engines, create_engine
from edge_agent.inference._hotswap import EngineFactory, HotSwapEngine, SwapRejected
from edge_agent.inference._onnxruntime import OnnxRuntimeEngine
from edge_agent.inference._parity import ParityError, check_parity, fp32_reference, needs_parity
from edge_agent.inference._pool import InferenceWorkerPool, PoolStats
from edge_agent.inference._tensorrt import TensorRTEngine, profile_shapes, tensorrt_cache_key
from edge_agent.inference._torch_cuda import TorchCudaEngine
from edge_agent.inference._torch_program import (
    TorchProgram,
    export_onnx,
    load_torch_program,
    save_torch_program,
    save_torchscript,
)

__all__ = [
    "AUTO_ORDER",
    "Dim",
    "EngineFactory",
    "EngineInfo",
    "EngineKind",
    "EngineUnavailable",
    "HotSwapEngine",
    "InferenceEngine",
    "InferenceWorkerPool",
    "OnnxRuntimeEngine",
    "ParityError",
    "PoolStats",
    "SwapRejected",
    "Tensor",
    "TensorRTEngine",
    "TorchCudaEngine",
    "TorchProgram",
    "available_engines",
    "batch_rows",
    "check_parity",
    "concat_requests",
    "create_engine",
    "export_onnx",
    "fp32_reference",
    "load_torch_program",
    "needs_parity",
    "probe_inputs",
    "profile_shapes",
    "run_in_thread",
    "save_torch_program",
    "save_torchscript",
    "split_outputs",
    "tensorrt_cache_key",
]
