"""The GhostNet-style liveness CNN (PyTorch; imported only by the training path and the benchmark).

GhostNet (Han et al., CVPR 2020) makes half of each layer's feature maps with an ordinary 1x1 convolution and the
other half ("ghosts") with a cheap depthwise convolution of the first half. Here: a stride-2 stem, six Ghost
bottlenecks (two with squeeze-and-excitation), a 1x1 head, global pooling and one logit. The input is the
six-channel stack of ``edge_agent.vision._preprocess`` (colour crop + motion/residual/flicker), fused from the
first layer on.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = [
    "GhostBottleneck",
    "GhostLivenessNet",
    "GhostModule",
    "LiveProbability",
    "count_parameters",
    "estimate_flops",
]

#: (kernel, expanded width, output width, squeeze-excite, stride) per Ghost bottleneck, before ``width``.
BLOCKS: tuple[tuple[int, int, int, bool, int], ...] = (
    (3, 16, 16, False, 1),
    (3, 48, 24, False, 2),
    (3, 72, 24, False, 1),
    (5, 72, 40, True, 2),
    (5, 120, 40, True, 1),
    (3, 160, 64, False, 2),
)


def _div(channels: float, divisor: int = 4) -> int:
    return max(divisor, int(channels + divisor / 2) // divisor * divisor)


class GhostModule(nn.Module):
    """``out`` channels: ``ceil(out / 2)`` from a 1x1 conv, the rest from a 3x3 depthwise conv of those."""

    def __init__(self, inp: int, out: int, *, relu: bool = True) -> None:
        super().__init__()
        self.out = out
        primary = math.ceil(out / 2)
        act: nn.Module = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.primary = nn.Sequential(nn.Conv2d(inp, primary, 1, bias=False), nn.BatchNorm2d(primary), act)
        act2: nn.Module = nn.ReLU(inplace=True) if relu else nn.Identity()
        self.cheap = nn.Sequential(
            nn.Conv2d(primary, primary, 3, padding=1, groups=primary, bias=False), nn.BatchNorm2d(primary), act2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.primary(x)
        return torch.cat([a, self.cheap(a)], dim=1)[:, : self.out]


class _SqueezeExcite(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = _div(channels / 4)
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Hardsigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gated: torch.Tensor = x * self.gate(x)
        return gated


class GhostBottleneck(nn.Module):
    """Ghost module (expand) → [depthwise k x k, stride] → [SE] → Ghost module (project), plus a shortcut."""

    def __init__(self, inp: int, mid: int, out: int, *, kernel: int, stride: int, se: bool) -> None:
        super().__init__()
        layers: list[nn.Module] = [GhostModule(inp, mid, relu=True)]
        if stride > 1:
            layers += [
                nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False),
                nn.BatchNorm2d(mid),
            ]
        if se:
            layers.append(_SqueezeExcite(mid))
        layers.append(GhostModule(mid, out, relu=False))
        self.body = nn.Sequential(*layers)
        self.shortcut: nn.Module = nn.Identity()
        if stride > 1 or inp != out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(inp, inp, kernel, stride, kernel // 2, groups=inp, bias=False),
                nn.BatchNorm2d(inp),
                nn.Conv2d(inp, out, 1, bias=False),
                nn.BatchNorm2d(out),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.body(x) + self.shortcut(x)
        return out


class GhostLivenessNet(nn.Module):
    """Liveness CNN: ``(N, in_channels, S, S)`` → ``(N, 1)`` logits; ``probability`` applies the sigmoid."""

    def __init__(self, in_channels: int = 6, *, width: float = 1.0, head: int = 128, dropout: float = 0.2) -> None:
        super().__init__()
        stem = _div(16 * width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU(inplace=True)
        )
        blocks: list[nn.Module] = []
        channels = stem
        for kernel, mid, out, se, stride in BLOCKS:
            out_c = _div(out * width)
            blocks.append(GhostBottleneck(channels, _div(mid * width), out_c, kernel=kernel, stride=stride, se=se))
            channels = out_c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(channels, head, 1, bias=False), nn.BatchNorm2d(head), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(head, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.head(self.blocks(self.stem(x)))).flatten(1)
        logits: torch.Tensor = self.classifier(self.dropout(features))
        return logits

    def probability(self, x: torch.Tensor) -> torch.Tensor:
        """P(live) per sample, ``(N, 1)``."""
        return torch.sigmoid(self.forward(x))


class LiveProbability(nn.Module):
    """The exported graph: the network followed by its sigmoid (output ``live_prob``, ``(N, 1)``)."""

    def __init__(self, net: GhostLivenessNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.probability(x)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def estimate_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-adds x 2 of convolutions and linear layers for one forward pass of ``input_shape`` (batch 1)."""
    total = 0

    def conv_hook(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kh, kw = module.kernel_size
        total += 2 * out.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += 2 * out.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape[1:]))
    model.train(was_training)
    for h in handles:
        h.remove()
    return total
