"""The image encoder (MONAI 3D Swin Transformer -> 512) and the text encoder (local BERT directory -> 512)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from streams.multimodal._config import EMBED_DIM, MultimodalConfig

__all__ = ["ImageEncoder", "TextEncoder", "load_tokenizer"]


class ImageEncoder(nn.Module):
    """``[b, C, H, W, D]`` -> ``[b, 512]``: Swin stages, global average pool of the last stage, projection.

    The last stage has ``16 * feature_size`` channels (768 for the usual 48, 192 for the tests' 12); a
    ``Linear`` maps it to 512, then a ``LayerNorm`` puts both modalities on one scale before fusion. (Feature
    sizes are multiples of 12, so the width is never already 512.)
    """

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        from monai.networks.nets.swin_unetr import SwinTransformer  # lazy: monai is heavy

        self.swin = SwinTransformer(
            in_chans=config.in_channels,
            embed_dim=config.feature_size,
            window_size=config.window_size,
            patch_size=config.patch_size,
            depths=config.depths,
            num_heads=config.num_heads,
            spatial_dims=3,
        )
        dim = config.image_dim
        self.proj = nn.Sequential(nn.Linear(dim, EMBED_DIM), nn.LayerNorm(EMBED_DIM))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        last = self.swin(image, normalize=True)[-1]
        pooled = last.flatten(2).mean(dim=2)
        out: torch.Tensor = self.proj(pooled)
        return out


def _check_dir(directory: str | Path) -> Path:
    path = Path(directory)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a model directory (no config.json); download the model there first")
    return path


def load_tokenizer(directory: str | Path) -> Any:
    """The tokenizer saved in ``directory`` (never fetched from a hub)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(_check_dir(directory)), local_files_only=True)


class TextEncoder(nn.Module):
    """Token ids + attention mask -> ``[b, 512]``: a BERT-family model from a local directory, mean-pooled over
    the real tokens, projected to 512 and layer-normalised."""

    def __init__(self, config: MultimodalConfig) -> None:
        super().__init__()
        if config.text_encoder_dir is None:
            raise ValueError("the text encoder needs text_encoder_dir (a local BERT-family model directory)")
        from transformers import AutoModel  # lazy: transformers is heavy

        self.bert = AutoModel.from_pretrained(str(_check_dir(config.text_encoder_dir)), local_files_only=True)
        hidden = int(self.bert.config.hidden_size)
        if hidden != config.text_hidden:
            raise ValueError(f"text_hidden is {config.text_hidden} but the model in the directory has {hidden}")
        self.proj = nn.Sequential(nn.Linear(hidden, EMBED_DIM), nn.LayerNorm(EMBED_DIM))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        out: torch.Tensor = self.proj(pooled)
        return out
