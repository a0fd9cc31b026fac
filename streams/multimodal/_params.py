"""A module's parameters as one flat float64 vector (the federated wire form) and back."""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from torch import nn

__all__ = ["flatten_params", "load_flat_params"]


def flatten_params(module: nn.Module) -> NDArray[np.float64]:
    """All parameters of ``module`` in ``parameters()`` order, as float64."""
    with torch.no_grad():
        parts = [p.detach().cpu().reshape(-1).to(torch.float64).numpy() for p in module.parameters()]
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.float64)


def load_flat_params(module: nn.Module, vec: ArrayLike) -> None:
    """Copy ``vec`` (from :func:`flatten_params`) into ``module``; refuses a wrong length or non-finite values."""
    values = np.asarray(vec, dtype=np.float64)
    total = sum(p.numel() for p in module.parameters())
    if values.shape != (total,):
        raise ValueError(f"expected a vector of {total} parameters, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("parameter vector contains non-finite values")
    offset = 0
    with torch.no_grad():
        for p in module.parameters():
            n = p.numel()
            p.copy_(torch.from_numpy(values[offset : offset + n].copy()).reshape(p.shape).to(p.dtype))
            offset += n
