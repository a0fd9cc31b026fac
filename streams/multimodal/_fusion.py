"""The tabular policy net, the gate and the head: the small part hospitals fine-tune together (pure PyTorch)."""

from __future__ import annotations

import torch
from torch import nn

from streams.multimodal._config import EMBED_DIM, POLICY_DIM, MultimodalConfig

__all__ = ["FusionHead", "PolicyNet"]


class PolicyNet(nn.Module):
    """MLP over the tabular policy features -> ``[b, 128]``."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, POLICY_DIM), nn.ReLU())

    def forward(self, policy: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(policy)
        return out


class FusionHead(nn.Module):
    """Gated fusion and the classification head over precomputed ``[b, 512]`` image and text features.

    ``gated``: ``fused = cat(img, txt) * sigmoid(gate(policy_net(policy)))`` (one gate per fused feature), then
    ``head(fused)``. ``concat`` (the ablation): ``head(cat(img, txt, policy_net(policy)))``.
    """

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        self.fusion = config.fusion
        self.policy_net = PolicyNet(config.policy_features, config.policy_hidden)
        fused = 2 * EMBED_DIM
        self.gate: nn.Linear | None = nn.Linear(POLICY_DIM, fused) if config.fusion == "gated" else None
        width = fused if config.fusion == "gated" else fused + POLICY_DIM
        self.head = nn.Sequential(
            nn.Dropout(config.dropout),
            nn.Linear(width, config.head_hidden),
            nn.ReLU(),
            nn.Linear(config.head_hidden, config.num_classes),
        )

    def gates(self, policy: torch.Tensor) -> torch.Tensor:
        """``sigmoid(gate(policy_net(policy)))``: ``[b, 1024]`` (the first 512 weigh the image); ones for concat."""
        p = self.policy_net(policy)
        if self.gate is None:
            return torch.ones(policy.shape[0], 2 * EMBED_DIM, dtype=p.dtype, device=p.device)
        return torch.sigmoid(self.gate(p))

    def forward(self, img: torch.Tensor, txt: torch.Tensor, policy: torch.Tensor) -> torch.Tensor:
        p = self.policy_net(policy)
        both = torch.cat([img, txt], dim=1)
        fused = both * torch.sigmoid(self.gate(p)) if self.gate is not None else torch.cat([both, p], dim=1)
        out: torch.Tensor = self.head(fused)
        return out
