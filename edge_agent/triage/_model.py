"""The triage model: knowledge-graph embeddings (DistMult) plus a set scorer on top of them.

Symptoms, conditions and departments are embedded in one space; the relations ``has_symptom`` and
``treated_in`` are diagonal (DistMult) scorers, trained on the graph's triples. A presentation (a SET of
symptoms, as a multi-hot vector) is pooled with learned per-symptom salience into one vector, scored against
every condition through ``has_symptom``, and the condition distribution is mapped to departments through the
learned ``treated_in`` relation: ``P(dept | symptoms) = sum_c P(c | symptoms) P(dept | c)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from torch import Tensor

__all__ = ["TriageKGModel", "kg_loss"]


class TriageKGModel(nn.Module):
    """``forward(symptoms[batch, n_symptoms] float32 multi-hot) -> department probabilities[batch, n_depts]``."""

    def __init__(
        self, n_symptoms: int, n_conditions: int, n_departments: int, *, dim: int = 32, generator: torch.Generator
    ) -> None:
        super().__init__()

        def init(*shape: int, std: float = 0.1) -> nn.Parameter:
            return nn.Parameter(torch.randn(*shape, generator=generator) * std)

        self.symptom_emb = init(n_symptoms, dim)
        self.condition_emb = init(n_conditions, dim)
        self.department_emb = init(n_departments, dim)
        self.rel_has_symptom = nn.Parameter(1.0 + torch.randn(dim, generator=generator) * 0.1)
        self.rel_treated_in = nn.Parameter(1.0 + torch.randn(dim, generator=generator) * 0.1)
        self.symptom_salience = nn.Parameter(torch.zeros(n_symptoms))
        self.condition_bias = nn.Parameter(torch.zeros(n_conditions))
        self.has_symptom_bias = nn.Parameter(torch.zeros(1))
        self.log_scale = nn.Parameter(torch.full((1,), math.log(4.0)))
        #: Set after training by temperature scaling on a validation set (1.0 while training).
        self.temperature: Tensor
        self.register_buffer("temperature", torch.ones(1))

    def has_symptom_scores(self) -> Tensor:
        """DistMult score of (condition, has_symptom, symptom) for every pair: [n_conditions, n_symptoms]."""
        return (self.condition_emb * self.rel_has_symptom) @ self.symptom_emb.T

    def treated_in_scores(self) -> Tensor:
        """DistMult score of (condition, treated_in, department) for every pair: [n_conditions, n_depts]."""
        return (self.condition_emb * self.rel_treated_in) @ self.department_emb.T

    def condition_logits(self, symptoms: Tensor) -> Tensor:
        """Salience-weighted mean of the selected symptoms' embeddings, scored through ``has_symptom``."""
        weights = symptoms * torch.exp(self.symptom_salience)
        weights = weights / (weights.sum(dim=1, keepdim=True) + 1e-6)
        pooled = weights @ self.symptom_emb
        scores = pooled @ (self.condition_emb * self.rel_has_symptom).T
        return scores * torch.exp(self.log_scale) + self.condition_bias

    def forward(self, symptoms: Tensor) -> Tensor:
        p_condition = torch.softmax(self.condition_logits(symptoms) / self.temperature, dim=1)
        p_department = torch.softmax(self.treated_in_scores(), dim=1)
        return p_condition @ p_department


def kg_loss(model: TriageKGModel, has_symptom: Tensor, department_of: Tensor) -> Tensor:
    """Graph objective: every (condition, symptom) pair is a binary fact (1-N scoring, positives up-weighted
    by the graph's sparsity); every condition's department is a softmax over departments."""
    logits = model.has_symptom_scores() + model.has_symptom_bias
    positives = has_symptom.sum()
    pos_weight = (has_symptom.numel() - positives) / positives.clamp(min=1.0)
    facts = nn.functional.binary_cross_entropy_with_logits(logits, has_symptom, pos_weight=pos_weight)
    treated = nn.functional.cross_entropy(model.treated_in_scores(), department_of)
    return facts + treated
