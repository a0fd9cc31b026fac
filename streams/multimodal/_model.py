"""The whole network: image and text encoders, policy net, gated fusion and head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from streams.multimodal._config import MultimodalConfig
from streams.multimodal._encoders import ImageEncoder, TextEncoder
from streams.multimodal._fusion import FusionHead

__all__ = ["MultimodalNet", "build_model"]


class MultimodalNet(nn.Module):
    """``(image [b,1,H,W,D], input_ids [b,T], attention_mask [b,T], policy [b,P])`` -> logits ``[b, classes]``."""

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        self.config = config
        self.image_encoder = ImageEncoder(config)
        self.text_encoder = TextEncoder(config)
        self.fusion = FusionHead(config)
        self.set_encoders_frozen(config.freeze_encoders)

    def set_encoders_frozen(self, frozen: bool) -> None:
        """Freeze (or unfreeze) both encoders, projections included."""
        for module in (self.image_encoder, self.text_encoder):
            for p in module.parameters():
                p.requires_grad_(not frozen)

    def train(self, mode: bool = True) -> MultimodalNet:
        """Frozen encoders stay in eval mode (no dropout), so their features do not change while training."""
        super().train(mode)
        if self.config.freeze_encoders:
            self.image_encoder.eval()
            self.text_encoder.eval()
        return self

    def embed(
        self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``[b, 512]`` image and text features."""
        return self.image_encoder(image), self.text_encoder(input_ids, attention_mask)

    def forward(
        self, image: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor, policy: torch.Tensor
    ) -> torch.Tensor:
        img, txt = self.embed(image, input_ids, attention_mask)
        out: torch.Tensor = self.fusion(img, txt, policy)
        return out


def build_model(config: MultimodalConfig, *, seed: int | None = None) -> MultimodalNet:
    """A freshly initialised network (under a scoped ``torch.manual_seed`` when ``seed`` is given); the text
    encoder's BERT weights are those of the directory."""
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return MultimodalNet(config)


def network_from_dict(config: dict[str, Any], text_encoder_dir: str | None = None) -> MultimodalNet:
    """A network from a config dict (as bundles store it), with its text encoder directory overridden; the
    ``_target_`` of a MONAI bundle's ``network_def``."""
    data = dict(config)
    if text_encoder_dir is not None:
        data["text_encoder_dir"] = text_encoder_dir
    return MultimodalNet(MultimodalConfig.from_dict(data))
