"""Open a MONAI bundle written by the trainer (``configs/inference.json`` + ``models/model.pt``) with MONAI's
own ``ConfigParser``: the cloud trainer and a hospital's federated client both load published versions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from streams.multimodal._model import MultimodalNet

__all__ = ["BundleInfo", "load_bundle"]


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """A rebuilt network (eval mode, weights loaded) and the bundle's metadata."""

    model: MultimodalNet
    metadata: dict[str, Any]


def load_bundle(root: Path) -> BundleInfo:
    """Rebuild the network of a bundle with MONAI's ``ConfigParser`` and load ``models/model.pt``."""
    from monai.bundle.config_parser import ConfigParser  # lazy: monai is heavy

    parser = ConfigParser()
    parser.read_config(str(root / "configs" / "inference.json"))
    parser["bundle_root"] = str(root)
    parser.read_meta(str(root / "configs" / "metadata.json"))
    parser.get_parsed_content("imports")  # as `monai.bundle run` does: makes `streams` visible to expressions
    net: MultimodalNet = parser.get_parsed_content("network_def")
    state = torch.load(root / "models" / "model.pt", map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    net.eval()
    return BundleInfo(net, dict(parser.get("_meta_", {})))
