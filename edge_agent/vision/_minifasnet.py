"""MiniFASNetV2 and MiniFASNetV1SE (the public Silent-Face anti-spoofing networks), written for their checkpoints.

The layer layout is that of the public networks: a stem (``conv1``, ``conv2_dw``), three stride-2 depthwise
stages each followed by residual depthwise blocks (``conv_23``/``conv_3``, ``conv_34``/``conv_4``,
``conv_45``/``conv_5``; in the SE variant the last block of each residual stage has a squeeze-and-excitation
module), a 1x1 expansion to 512 channels, a 5x5 global depthwise convolution, and a 512 -> 128 -> 3 head.
The pruned channel widths differ per checkpoint, so they are read from the state dict's tensor shapes
(``MiniFASNetWidths.from_state_dict``) and ``load_state_dict(strict=True)`` then proves the match key by key.

Input: 1 x 3 x 80 x 80, BGR, float 0-255 (not scaled). Output: 3 logits; after softmax, class 1 is live.
Torch is imported by this module; import it only where a model is built or exported.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["MiniFASNet", "MiniFASNetWidths", "export_minifasnet", "load_minifasnet"]

_STAGES = (("conv_23", "conv_3"), ("conv_34", "conv_4"), ("conv_45", "conv_5"))


class _ConvBlock(nn.Module):
    """Conv (no bias) + BatchNorm + PReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.prelu = nn.PReLU(c_out)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.prelu(self.bn(self.conv(x)))
        return out


class _LinearBlock(nn.Module):
    """Conv (no bias) + BatchNorm, no activation."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.bn(self.conv(x))
        return out


class _SEModule(nn.Module):
    """Squeeze-and-excitation with BatchNorm after each 1x1 convolution (as the checkpoints have)."""

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        w = self.sigmoid(self.bn2(self.fc2(self.relu(self.bn1(self.fc1(self.avg_pool(x)))))))
        out: Tensor = x * w
        return out


class _DepthWise(nn.Module):
    """1x1 expand, 3x3 depthwise (stride 1 or 2), 1x1 project; residual when stride 1; optional SE."""

    def __init__(self, c_in: int, c_mid: int, c_out: int, *, stride: int, residual: bool, se: int = 0) -> None:
        super().__init__()
        self.residual = residual
        self.conv = _ConvBlock(c_in, c_mid, 1, 1, 0)
        self.conv_dw = _ConvBlock(c_mid, c_mid, 3, stride, 1, groups=c_mid)
        self.project = _LinearBlock(c_mid, c_out, 1, 1, 0)
        self.se_module = _SEModule(c_out, se) if se else None

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.project(self.conv_dw(self.conv(x)))
        if self.se_module is not None:
            out = self.se_module(out)
        return x + out if self.residual else out


class _Residual(nn.Module):
    def __init__(self, blocks: list[_DepthWise]) -> None:
        super().__init__()
        self.model = nn.Sequential(*blocks)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.model(x)
        return out


@dataclass(frozen=True, kw_only=True)
class MiniFASNetWidths:
    """The channel widths of one pruned MiniFASNet: stem, per stage (down-block mid, residual mids, SE hidden)."""

    stem: int
    stage_in: tuple[int, int, int]
    down_mid: tuple[int, int, int]
    stage_out: tuple[int, int, int]
    residual_mid: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
    se_hidden: tuple[int, int, int]  # 0: no SE in that stage
    embedding: int = 512
    features: int = 128
    classes: int = 3
    kernel: int = 5

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor]) -> MiniFASNetWidths:
        """Read the widths from a checkpoint's tensor shapes (keys without the ``module.`` prefix)."""
        stage_in, down_mid, stage_out, residual_mid, se_hidden = [], [], [], [], []
        for down, res in _STAGES:
            stage_in.append(int(state[f"{down}.conv.conv.weight"].shape[1]))
            down_mid.append(int(state[f"{down}.conv.conv.weight"].shape[0]))
            stage_out.append(int(state[f"{down}.project.conv.weight"].shape[0]))
            mids = []
            hidden = 0
            i = 0
            while f"{res}.model.{i}.conv.conv.weight" in state:
                mids.append(int(state[f"{res}.model.{i}.conv.conv.weight"].shape[0]))
                se_key = f"{res}.model.{i}.se_module.fc1.weight"
                if se_key in state:
                    hidden = int(state[se_key].shape[0])
                i += 1
            residual_mid.append(tuple(mids))
            se_hidden.append(hidden)
        return cls(
            stem=int(state["conv1.conv.weight"].shape[0]),
            stage_in=(stage_in[0], stage_in[1], stage_in[2]),
            down_mid=(down_mid[0], down_mid[1], down_mid[2]),
            stage_out=(stage_out[0], stage_out[1], stage_out[2]),
            residual_mid=(residual_mid[0], residual_mid[1], residual_mid[2]),
            se_hidden=(se_hidden[0], se_hidden[1], se_hidden[2]),
            embedding=int(state["conv_6_sep.conv.weight"].shape[0]),
            features=int(state["linear.weight"].shape[0]),
            classes=int(state["prob.weight"].shape[0]),
            kernel=int(state["conv_6_dw.conv.weight"].shape[-1]),
        )


class MiniFASNet(nn.Module):
    """MiniFASNetV2 (no SE) or MiniFASNetV1SE (SE in the last residual block of each stage), at 80 x 80."""

    def __init__(self, widths: MiniFASNetWidths) -> None:
        super().__init__()
        w = widths
        self.widths = widths
        self.conv1 = _ConvBlock(3, w.stem, 3, 2, 1)
        self.conv2_dw = _ConvBlock(w.stem, w.stem, 3, 1, 1, groups=w.stem)
        for s, (down, res) in enumerate(_STAGES):
            setattr(self, down, _DepthWise(w.stage_in[s], w.down_mid[s], w.stage_out[s], stride=2, residual=False))
            mids = w.residual_mid[s]
            blocks = [
                _DepthWise(
                    w.stage_out[s],
                    mid,
                    w.stage_out[s],
                    stride=1,
                    residual=True,
                    se=w.se_hidden[s] if i == len(mids) - 1 else 0,
                )
                for i, mid in enumerate(mids)
            ]
            setattr(self, res, _Residual(blocks))
        last = w.stage_out[2]
        self.conv_6_sep = _ConvBlock(last, w.embedding, 1, 1, 0)
        self.conv_6_dw = _LinearBlock(w.embedding, w.embedding, w.kernel, 1, 0, groups=w.embedding)
        self.linear = nn.Linear(w.embedding, w.features, bias=False)
        self.bn = nn.BatchNorm1d(w.features)
        self.drop = nn.Dropout(0.2)
        self.prob = nn.Linear(w.features, w.classes, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2_dw(self.conv1(x))
        for down, res in _STAGES:
            out = getattr(self, res)(getattr(self, down)(out))
        out = self.conv_6_dw(self.conv_6_sep(out))
        out = torch.flatten(out, 1)
        logits: Tensor = self.prob(self.drop(self.bn(self.linear(out))))
        return logits


def load_minifasnet(path: Path) -> MiniFASNet:
    """A MiniFASNet in eval mode with the checkpoint at ``path`` loaded exactly (strict, every key)."""
    raw = torch.load(path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("module."): v for k, v in raw.items()}
    model = MiniFASNet(MiniFASNetWidths.from_state_dict(state))
    model.load_state_dict(state, strict=True)
    return model.eval()


class _WithSoftmax(nn.Module):
    def __init__(self, net: MiniFASNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = torch.softmax(self.net(x), dim=1)
        return out


def export_minifasnet(model: MiniFASNet, onnx_path: Path, *, size: int = 80) -> tuple[Path, Path]:
    """Export with the softmax included, for every engine: ONNX (ONNX Runtime, TensorRT) and, beside it, a
    ``torch.export`` program (``.pt2``, Torch CUDA). Input ``input`` (N x 3 x size x size, BGR 0-255), output
    ``probs`` (N x 3; column 1 is live); the batch dimension is dynamic."""
    import numpy as np

    from edge_agent.inference._torch_program import export_onnx, save_torch_program

    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    wrapped = _WithSoftmax(model).eval()
    example = {"input": np.zeros((2, 3, size, size), np.float32)}  # batch 1 would be specialised by export
    export_onnx(wrapped, example, onnx_path, output_names=["probs"])
    program = save_torch_program(wrapped, example, onnx_path.with_suffix(".pt2"), output_names=["probs"], max_batch=64)
    return onnx_path, program
