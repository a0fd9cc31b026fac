"""The federated-learning client that runs at each hospital on its own data.

Light names (the trainer protocol, data and config) import only numpy. The torch/opacus-backed names
(trainers, model helpers, baseline, simulation) are loaded on first access, so importing this package does
not import torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge_agent.federated._config import FlTrainingConfig
from edge_agent.federated._data import (
    STANDARDISE_MODES,
    FederatedSplit,
    HospitalData,
    describe_split,
    dirichlet_split,
    federation_standardiser,
    label_skew,
    load_breast_cancer_split,
    load_federated_breast_cancer,
    split_counts,
    standardise_with,
)
from edge_agent.federated._trainer import FederationStandardised, LocalResult, LocalTrainer

if TYPE_CHECKING:
    from edge_agent.federated._centralized import centralized_baseline, centralized_metrics
    from edge_agent.federated._client import ClientConfig, FlClient
    from edge_agent.federated._client_cli import add_fl_client_command, breast_cancer_trainer, load_trainer
    from edge_agent.federated._client_core import ClientCore, QuantizedUpdate, quantize_update, round_rngs
    from edge_agent.federated._client_state import load_client_state, save_client_state
    from edge_agent.federated._local import DpSgdTrainer, NonPrivateTrainer, build_trainer
    from edge_agent.federated._model import binary_metrics, flatten, load_flat, make_model, num_params, roc_auc
    from edge_agent.federated._multimodal import MultimodalFlTrainer, multimodal_trainer
    from edge_agent.federated._privacy import accountant_epsilon, calibrated_noise_multiplier
    from edge_agent.federated._simulate import RoundRecord, SimulationResult, simulate

_LAZY = {
    "ClientConfig": "_client",
    "FlClient": "_client",
    "add_fl_client_command": "_client_cli",
    "breast_cancer_trainer": "_client_cli",
    "load_trainer": "_client_cli",
    "ClientCore": "_client_core",
    "QuantizedUpdate": "_client_core",
    "quantize_update": "_client_core",
    "round_rngs": "_client_core",
    "load_client_state": "_client_state",
    "save_client_state": "_client_state",
    "centralized_baseline": "_centralized",
    "centralized_metrics": "_centralized",
    "DpSgdTrainer": "_local",
    "NonPrivateTrainer": "_local",
    "build_trainer": "_local",
    "MultimodalFlTrainer": "_multimodal",
    "multimodal_trainer": "_multimodal",
    "binary_metrics": "_model",
    "flatten": "_model",
    "load_flat": "_model",
    "make_model": "_model",
    "num_params": "_model",
    "roc_auc": "_model",
    "accountant_epsilon": "_privacy",
    "calibrated_noise_multiplier": "_privacy",
    "RoundRecord": "_simulate",
    "SimulationResult": "_simulate",
    "simulate": "_simulate",
}

__all__ = [
    "STANDARDISE_MODES",
    "ClientConfig",
    "ClientCore",
    "DpSgdTrainer",
    "FederatedSplit",
    "FederationStandardised",
    "FlClient",
    "FlTrainingConfig",
    "HospitalData",
    "LocalResult",
    "LocalTrainer",
    "MultimodalFlTrainer",
    "NonPrivateTrainer",
    "QuantizedUpdate",
    "RoundRecord",
    "SimulationResult",
    "accountant_epsilon",
    "add_fl_client_command",
    "binary_metrics",
    "breast_cancer_trainer",
    "build_trainer",
    "calibrated_noise_multiplier",
    "centralized_baseline",
    "centralized_metrics",
    "describe_split",
    "dirichlet_split",
    "federation_standardiser",
    "flatten",
    "label_skew",
    "load_breast_cancer_split",
    "load_client_state",
    "load_federated_breast_cancer",
    "load_flat",
    "load_trainer",
    "make_model",
    "multimodal_trainer",
    "num_params",
    "quantize_update",
    "roc_auc",
    "round_rngs",
    "save_client_state",
    "simulate",
    "split_counts",
    "standardise_with",
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
