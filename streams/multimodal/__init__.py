"""The multimodal network (3D Swin CT encoder, BERT report encoder, policy MLP, gated fusion, head).

Pure PyTorch, no Kafka: the cloud trainer (``cloud_workers.trainer``) trains and exports it, and a hospital's
federated client (``edge_agent.federated``) fine-tunes its fusion head; neither may import the other, so the
model lives here. Importing this package imports no torch: the torch-backed names load on first access.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streams.multimodal._config import EMBED_DIM, POLICY_DIM, MultimodalConfig
from streams.multimodal._manifest import REQUIRED_COLUMNS, Case, ManifestError, load_manifest

if TYPE_CHECKING:
    from streams.multimodal._bundle import BundleInfo, load_bundle
    from streams.multimodal._clipping import ClippedGradients, LinearClipper
    from streams.multimodal._encoders import ImageEncoder, TextEncoder, load_tokenizer
    from streams.multimodal._features import CaseFeatures, encode_cases
    from streams.multimodal._fusion import FusionHead, PolicyNet
    from streams.multimodal._model import MultimodalNet, build_model, network_from_dict
    from streams.multimodal._params import flatten_params, load_flat_params
    from streams.multimodal._transforms import TokenizeReportd, build_transforms, seed_transforms

_LAZY = {
    "BundleInfo": "_bundle",
    "load_bundle": "_bundle",
    "ClippedGradients": "_clipping",
    "LinearClipper": "_clipping",
    "CaseFeatures": "_features",
    "encode_cases": "_features",
    "TokenizeReportd": "_transforms",
    "build_transforms": "_transforms",
    "seed_transforms": "_transforms",
    "ImageEncoder": "_encoders",
    "TextEncoder": "_encoders",
    "load_tokenizer": "_encoders",
    "FusionHead": "_fusion",
    "PolicyNet": "_fusion",
    "MultimodalNet": "_model",
    "build_model": "_model",
    "network_from_dict": "_model",
    "flatten_params": "_params",
    "load_flat_params": "_params",
}

__all__ = [
    "EMBED_DIM",
    "POLICY_DIM",
    "REQUIRED_COLUMNS",
    "BundleInfo",
    "Case",
    "CaseFeatures",
    "ClippedGradients",
    "FusionHead",
    "ImageEncoder",
    "LinearClipper",
    "ManifestError",
    "MultimodalConfig",
    "MultimodalNet",
    "PolicyNet",
    "TextEncoder",
    "TokenizeReportd",
    "build_model",
    "build_transforms",
    "encode_cases",
    "flatten_params",
    "load_bundle",
    "load_flat_params",
    "load_manifest",
    "load_tokenizer",
    "network_from_dict",
    "seed_transforms",
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
