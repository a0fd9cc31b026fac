"""What the federated client needs from a local model: train from the global parameters, return an update."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

__all__ = ["DpAccounted", "FederationStandardised", "KeyedTrainer", "LocalResult", "LocalTrainer"]


@dataclass(frozen=True, slots=True)
class LocalResult:
    #: New local parameters minus the global parameters they started from (flat float64).
    update: NDArray[np.float64]
    num_examples: int
    #: Privacy spent so far by this client under DP-SGD (cumulative over rounds), and its delta.
    epsilon: float
    delta: float
    #: Local training metrics, e.g. {"loss": ..., "train_accuracy": ...}.
    metrics: dict[str, float]
    #: ``(noise_multiplier, sample_rate, steps)`` of this round's DP-SGD; None for a trainer without DP.
    round_dp: tuple[float, float, int] | None = None


class LocalTrainer(Protocol):
    """A hospital's model and data. Parameters travel as one flat float64 vector."""

    @property
    def num_params(self) -> int: ...

    def initial_params(self, seed: int) -> NDArray[np.float64]: ...

    def train(self, global_params: NDArray[np.float64], round_id: int, rng: np.random.Generator) -> LocalResult: ...

    def evaluate(self, params: NDArray[np.float64]) -> dict[str, float]: ...


@runtime_checkable
class KeyedTrainer(Protocol):
    """A trainer that takes the round's secret key directly (its sampling and noise come from a CSPRNG keyed
    with it) instead of a NumPy generator."""

    def train_keyed(self, global_params: NDArray[np.float64], round_id: int, key: bytes) -> LocalResult: ...


@runtime_checkable
class DpAccounted(Protocol):
    """A DP trainer whose accountant history the client persists and restores across restarts."""

    def accountant_history(self) -> list[tuple[float, float, int]]: ...

    def restore_accountant(self, history: Sequence[tuple[float, float, int]]) -> None: ...


@runtime_checkable
class FederationStandardised(Protocol):
    """A trainer holding raw features that waits for the federation's standardiser (the statistics round):
    it sends its moments in round 0 and trains only once the mean and std published with version 0 are set."""

    @property
    def awaits_standardiser(self) -> bool: ...

    @property
    def standardised(self) -> bool: ...

    def feature_moments(self) -> list[int]: ...

    def set_standardiser(self, mean: NDArray[np.float64], std: NDArray[np.float64]) -> None: ...
