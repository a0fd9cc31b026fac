"""SYNTHETIC patient presentations generated from the graph (made up, not patient data): a random subset of
one condition's symptoms, sometimes with an unrelated noise symptom. Used to train and evaluate the model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.triage._graph import KnowledgeGraph

__all__ = ["PresentationConfig", "Presentations", "generate_presentations", "unseen_rows"]


@dataclass(frozen=True, slots=True)
class PresentationConfig:
    #: How many of the condition's symptoms a presentation shows (capped by how many it has).
    min_symptoms: int = 2
    max_symptoms: int = 4
    #: Probability of one extra symptom unrelated to the condition (never a red flag).
    noise_probability: float = 0.3


@dataclass(frozen=True, slots=True)
class Presentations:
    """``x``: multi-hot float32 [n, n_symptoms]; ``condition``/``department``: int64 labels [n]."""

    x: NDArray[np.float32]
    condition: NDArray[np.int64]
    department: NDArray[np.int64]


def generate_presentations(
    graph: KnowledgeGraph, per_condition: int, rng: np.random.Generator, config: PresentationConfig | None = None
) -> Presentations:
    """``per_condition`` synthetic presentations of every condition, drawn with ``rng`` only."""
    cfg = config or PresentationConfig()
    n = per_condition * len(graph.conditions)
    x = np.zeros((n, len(graph.symptoms)), dtype=np.float32)
    cond = np.repeat(np.arange(len(graph.conditions), dtype=np.int64), per_condition)
    dept = np.empty(n, dtype=np.int64)
    noise_pool = np.array([i for i, s in enumerate(graph.symptoms) if s not in graph.red_flags], dtype=np.int64)
    row = 0
    for ci, c in enumerate(graph.conditions):
        own = np.array([graph.symptom_index[s] for s in c.symptoms], dtype=np.int64)
        others = np.setdiff1d(noise_pool, own)
        lo, hi = min(cfg.min_symptoms, len(own)), min(cfg.max_symptoms, len(own))
        for _ in range(per_condition):
            k = int(rng.integers(lo, hi + 1))
            x[row, rng.choice(own, size=k, replace=False)] = 1.0
            if others.size and rng.random() < cfg.noise_probability:
                x[row, rng.choice(others)] = 1.0
            dept[row] = graph.department_index[c.department]
            row += 1
        assert cond[row - 1] == ci
    return Presentations(x, cond, dept)


def unseen_rows(train: NDArray[np.float32], test: NDArray[np.float32]) -> NDArray[np.bool_]:
    """Mask of test rows whose exact symptom set never occurs in ``train`` (an honest held-out split)."""
    seen = {row.tobytes() for row in (train > 0)}
    return np.array([row.tobytes() not in seen for row in (test > 0)], dtype=bool)
