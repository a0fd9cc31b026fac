"""The multimodal network's shape: one typed config, light to import (no torch)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["EMBED_DIM", "POLICY_DIM", "MultimodalConfig"]

#: Width of the image and the text features that are fused (each).
EMBED_DIM = 512
#: Width of the policy network's output, the input of the gate.
POLICY_DIM = 128


@dataclass(frozen=True, kw_only=True)
class MultimodalConfig:
    """Everything needed to rebuild the network (saved with checkpoints, bundles and model versions).

    The image encoder is MONAI's 3D ``SwinTransformer``; its last stage has ``16 * feature_size`` channels,
    which are average-pooled and projected by one ``Linear`` to :data:`EMBED_DIM` (768 -> 512 for the
    usual 48; 192 -> 512 for the tests' 12). The text encoder is a BERT-family model from
    ``text_encoder_dir``, mean-pooled over the attention mask and projected to :data:`EMBED_DIM`.
    """

    #: Input volume size (H, W, D) the image encoder is built and exported for.
    roi: tuple[int, int, int] = (256, 256, 32)
    in_channels: int = 1
    feature_size: int = 48
    depths: tuple[int, int, int, int] = (2, 2, 2, 2)
    num_heads: tuple[int, int, int, int] = (3, 6, 12, 24)
    window_size: tuple[int, int, int] = (7, 7, 7)
    patch_size: tuple[int, int, int] = (2, 2, 2)
    #: Directory of a BERT-family model (``config.json``, weights, tokenizer files); None only for fusion-only use.
    text_encoder_dir: str | None = None
    #: Hidden size of that model (read from its config when the encoder is built; needed for fusion-only use).
    text_hidden: int = 768
    max_tokens: int = 64
    #: Number of tabular policy features and the policy MLP's hidden width.
    policy_features: int = 8
    policy_hidden: int = 64
    #: ``gated``: ``cat(img, txt) * sigmoid(gate(policy))``; ``concat``: ``cat(img, txt, policy)`` (ablation).
    fusion: Literal["gated", "concat"] = "gated"
    head_hidden: int = 64
    num_classes: int = 2
    dropout: float = 0.0
    #: Freeze the image and text encoders (the federated default): only policy net, gate and head train.
    freeze_encoders: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.roi) != 3 or min(self.roi) < 1:
            raise ValueError(f"roi must be three positive sizes, got {self.roi}")
        if self.feature_size < 12 or self.feature_size % 12:
            raise ValueError(f"feature_size must be a positive multiple of 12 (MONAI Swin), got {self.feature_size}")
        if self.policy_features < 1 or self.num_classes < 2 or self.max_tokens < 4:
            raise ValueError("need policy_features >= 1, num_classes >= 2 and max_tokens >= 4")
        if self.fusion not in ("gated", "concat"):
            raise ValueError(f"fusion must be 'gated' or 'concat', got {self.fusion!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def image_dim(self) -> int:
        """Channels of the Swin's last stage (before the projection to 512)."""
        return 16 * self.feature_size

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MultimodalConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown multimodal config keys: {sorted(unknown)}")
        tuples = ("roi", "depths", "num_heads", "window_size", "patch_size")
        values: dict[str, Any] = {k: tuple(v) if k in tuples else v for k, v in data.items()}
        return cls(**values)

    def replace(self, **changes: Any) -> MultimodalConfig:
        """A copy with ``changes``."""
        return MultimodalConfig.from_dict({**self.to_dict(), **changes})
