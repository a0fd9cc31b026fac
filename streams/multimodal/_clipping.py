"""Per-example clipped gradient sums for a module whose parameters all sit in ``nn.Linear`` layers (the fusion
head), without materialising per-example gradients.

A Linear layer applied once to a batch of rows gives example ``i`` the weight gradient ``g_i a_iᵀ`` (``a_i`` the
layer's input row, ``g_i`` the gradient of example ``i``'s loss with respect to the layer's output row), so
``||∇W_i||² = ||a_i||² · ||g_i||²`` and ``||∇b_i||² = ||g_i||²``. One forward (hooks keep each layer's input and
output), one backward to the layer outputs only (no parameter gradients), the per-example norms from those two
row norms, opacus's flat clip factors ``c_i = min(1, C / (||∇_i|| + 1e-6))``, then ``Σ_i c_i g_i a_iᵀ`` as one
matrix product per layer. That is what opacus's ``GradSampleModule`` + ``DPOptimizer`` clip and sum, at about the
cost of one plain backward; the noise and the scaling stay with the caller (the federated trainer adds its keyed
noise of standard deviation ``noise_multiplier × C`` to the sum).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["ClippedGradients", "LinearClipper"]

#: opacus's ``DPOptimizer.clip_and_accumulate`` adds this to the norm before dividing.
_EPS = 1e-6


@dataclass(frozen=True, slots=True)
class ClippedGradients:
    """``grads[k]``: the clipped per-example gradients of parameter ``k`` summed over the batch (in the
    clipper's ``params`` order); ``norms``: each example's gradient norm before clipping."""

    grads: list[torch.Tensor]
    norms: torch.Tensor


class LinearClipper:
    """Records the ``nn.Linear`` layers of ``module`` during :meth:`record` and returns the clipped gradient sum.

    Refuses a module with a trainable parameter outside an ``nn.Linear`` (the identity above holds only there);
    each layer must run exactly once per recorded forward, on ``[batch, features]`` rows.
    """

    def __init__(self, module: nn.Module, max_grad_norm: float) -> None:
        if not max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be positive, got {max_grad_norm}")
        self.max_grad_norm = float(max_grad_norm)
        self._linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
        owned = {id(p) for m in self._linears for p in m.parameters(recurse=False)}
        stray = [name for name, p in module.named_parameters() if p.requires_grad and id(p) not in owned]
        if stray:
            raise ValueError(f"only nn.Linear parameters can be clipped this way; not {stray}")
        #: The trainable parameters, in ``module.parameters()`` order (the order of the returned gradients).
        self.params = [p for p in module.parameters() if p.requires_grad]
        self._records: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._recording = False
        for layer in self._linears:
            layer.register_forward_hook(self._keep)

    def _keep(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if not self._recording:
            return
        if id(layer) in self._records:
            raise ValueError("a Linear layer ran twice in one recorded forward; its per-example norm is not a_i·g_i")
        if inputs[0].dim() != 2:
            raise ValueError(f"expected [batch, features] rows into a Linear layer, got {tuple(inputs[0].shape)}")
        self._records[id(layer)] = (inputs[0].detach(), output)

    @contextmanager
    def record(self) -> Iterator[None]:
        """Keep every Linear layer's input and output during the forward inside this block."""
        self._records = {}
        self._recording = True
        try:
            yield
        finally:
            self._recording = False

    def clipped_sum(self, losses: torch.Tensor) -> ClippedGradients:
        """The clipped gradient sum for ``losses`` (``[batch]``, one loss per example, from the recorded forward)."""
        records, self._records = self._records, {}
        batch = int(losses.shape[0])
        if batch == 0:
            return ClippedGradients([torch.zeros_like(p) for p in self.params], losses.new_zeros(0))
        layers = [m for m in self._linears if any(p.requires_grad for p in m.parameters(recurse=False))]
        missing = [m for m in layers if id(m) not in records]
        if missing:
            raise ValueError(f"{len(missing)} trainable Linear layer(s) did not run in the recorded forward")
        outputs = [records[id(m)][1] for m in layers]
        out_grads = torch.autograd.grad(losses.sum(), outputs)
        sq = losses.new_zeros(batch, dtype=torch.float64)
        for layer, g in zip(layers, out_grads, strict=True):
            a = records[id(layer)][0]
            g2 = g.pow(2).sum(dim=1).double()
            if layer.weight.requires_grad:
                sq += a.pow(2).sum(dim=1).double() * g2
            if layer.bias is not None and layer.bias.requires_grad:
                sq += g2
        norms = sq.sqrt().to(losses.dtype)
        factor = (self.max_grad_norm / (norms + _EPS)).clamp(max=1.0)
        summed: dict[int, torch.Tensor] = {}
        for layer, g in zip(layers, out_grads, strict=True):
            scaled = g * factor.to(g.dtype)[:, None]
            if layer.weight.requires_grad:
                summed[id(layer.weight)] = scaled.t() @ records[id(layer)][0]
            if layer.bias is not None and layer.bias.requires_grad:
                summed[id(layer.bias)] = scaled.sum(dim=0)
        return ClippedGradients([summed[id(p)] for p in self.params], norms)
