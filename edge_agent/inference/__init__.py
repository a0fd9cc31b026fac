"""Inference engines behind one interface: ONNX Runtime (CPU, default), Torch CUDA and TensorRT (GPU)."""

from edge_agent.inference._base import EngineInfo, InferenceEngine, Tensor, run_in_thread
from edge_agent.inference._onnxruntime import OnnxRuntimeEngine

__all__ = ["EngineInfo", "InferenceEngine", "OnnxRuntimeEngine", "Tensor", "run_in_thread"]
