"""The multimodal retraining worker: Lightning training, ONNX export, MONAI bundles, the ``trainer`` service.

The network and the data pipeline live in :mod:`streams.multimodal` (hospitals' federated clients use them
too). Importing this package imports no torch: the torch-backed names load on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cloud_workers.trainer._synthetic import SyntheticConfig, ct_sources, generate_synthetic, make_report
from cloud_workers.trainer._train import TrainConfig, TrainResult, train_multimodal

if TYPE_CHECKING:
    from cloud_workers.trainer._export import BundleInfo, export_onnx, load_bundle, onnx_parity, save_bundle
    from cloud_workers.trainer._lightning import MultimodalDataModule, MultimodalModule, split_cases

_LAZY = {
    "BundleInfo": "_export",
    "export_onnx": "_export",
    "load_bundle": "_export",
    "onnx_parity": "_export",
    "save_bundle": "_export",
    "MultimodalDataModule": "_lightning",
    "MultimodalModule": "_lightning",
    "split_cases": "_lightning",
}

__all__ = [
    "BundleInfo",
    "MultimodalDataModule",
    "MultimodalModule",
    "SyntheticConfig",
    "TrainConfig",
    "TrainResult",
    "ct_sources",
    "export_onnx",
    "generate_synthetic",
    "load_bundle",
    "make_report",
    "onnx_parity",
    "save_bundle",
    "split_cases",
    "train_multimodal",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
