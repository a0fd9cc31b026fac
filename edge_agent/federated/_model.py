"""The classifier hospitals train together, its flat parameter vector, and evaluation metrics.

The model outputs one logit (probability of label 1). ``hidden=0`` is logistic regression; ``hidden>0`` adds
one ReLU hidden layer. Parameters travel as one float64 vector in ``named_parameters()`` order.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

__all__ = ["binary_metrics", "flatten", "load_flat", "make_model", "num_params", "roc_auc"]


def make_model(n_features: int, hidden: int = 0, *, seed: int | None = None) -> nn.Sequential:
    """A one-logit classifier: ``Linear(n_features, 1)`` or ``Linear → ReLU → Linear`` with ``hidden`` units.

    With ``seed`` the initial weights come from a scoped ``torch.manual_seed`` (the global RNG is restored).
    """
    if n_features < 1 or hidden < 0:
        raise ValueError(f"n_features must be >= 1 and hidden >= 0, got {n_features}, {hidden}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        if hidden == 0:
            return nn.Sequential(nn.Linear(n_features, 1))
        return nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def num_params(model: nn.Module) -> int:
    """Number of scalar parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())


def flatten(model: nn.Module) -> NDArray[np.float64]:
    """All parameters of ``model`` as one float64 vector, in ``named_parameters()`` order."""
    with torch.no_grad():
        parts = [p.detach().cpu().reshape(-1).to(torch.float64).numpy() for p in model.parameters()]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def load_flat(model: nn.Module, vec: ArrayLike) -> None:
    """Copy the flat vector ``vec`` (as produced by :func:`flatten`) into ``model``'s parameters, in place."""
    values = np.asarray(vec, dtype=np.float64)
    total = num_params(model)
    if values.shape != (total,):
        raise ValueError(f"expected a vector of {total} parameters, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("parameter vector contains non-finite values")
    offset = 0
    with torch.no_grad():
        for p in model.parameters():
            n = p.numel()
            chunk = torch.from_numpy(values[offset : offset + n].copy()).reshape(p.shape)
            p.copy_(chunk.to(dtype=p.dtype, device=p.device))
            offset += n


def roc_auc(y: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve (Mann–Whitney statistic, ties counted half); NaN when only one class is present."""
    labels = np.asarray(y).astype(bool)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average ranks (1-based) over runs of equal scores
    _, first, counts = np.unique(sorted_s, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def binary_metrics(model: nn.Module, X: NDArray[np.float64], y: NDArray[np.int64]) -> dict[str, float]:
    """Accuracy (threshold 0.5), ROC AUC, mean log-loss and ``n`` of ``model`` on ``(X, y)``."""
    if y.size == 0:
        return {"accuracy": math.nan, "auc": math.nan, "loss": math.nan, "n": 0.0}
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(X, dtype=torch.float32)).reshape(-1)
        target = torch.as_tensor(y, dtype=torch.float32)
        loss = float(nn.functional.binary_cross_entropy_with_logits(logits, target))
    model.train(was_training)
    scores = logits.numpy().astype(np.float64)
    accuracy = float(np.mean((scores > 0).astype(np.int64) == y))
    return {"accuracy": accuracy, "auc": roc_auc(y, scores), "loss": loss, "n": float(y.size)}
