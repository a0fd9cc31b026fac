"""The Linear-layer clipped gradient sum equals opacus's per-sample clipping on the same batch (both fusions),
and refuses what it cannot clip exactly."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from streams.multimodal import EMBED_DIM, FusionHead, LinearClipper, MultimodalConfig


def _batch(n: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    img, txt = torch.randn(n, EMBED_DIM, generator=gen), torch.randn(n, EMBED_DIM, generator=gen)
    return img, txt, torch.randn(n, 8, generator=gen), torch.randint(0, 2, (n,), generator=gen)


def _opacus_summed(head: FusionHead, batch: tuple[torch.Tensor, ...], clip: float) -> list[torch.Tensor]:
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    img, txt, pol, y = batch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gsm = GradSampleModule(head)
        opt = DPOptimizer(torch.optim.SGD(head.parameters(), lr=0.1), noise_multiplier=0.0, max_grad_norm=clip,
                          expected_batch_size=len(y))  # fmt: skip
        F.cross_entropy(gsm(img, txt, pol), y).backward()  # type: ignore[no-untyped-call]
        opt.clip_and_accumulate()
    out = [p.summed_grad.detach().clone() for p in head.parameters()]  # type: ignore[attr-defined]
    gsm._close()
    return out


@pytest.mark.parametrize("fusion", ["gated", "concat"])
@pytest.mark.parametrize("clip", [0.05, 1.0, 1e3])  # every example clipped, some, none
def test_clipped_sum_equals_opacus_per_sample_clipping(fusion: str, clip: float) -> None:
    cfg = MultimodalConfig(roi=(32, 32, 8), feature_size=12, fusion=fusion)  # type: ignore[arg-type]
    torch.manual_seed(0)
    head = FusionHead(cfg)
    reference = FusionHead(cfg)
    reference.load_state_dict(head.state_dict())
    batch = _batch(16, seed=1)
    expected = _opacus_summed(reference, batch, clip)

    clipper = LinearClipper(head, clip)
    img, txt, pol, y = batch
    with clipper.record():
        logits = head(img, txt, pol)
    got = clipper.clipped_sum(F.cross_entropy(logits, y, reduction="none"))
    assert got.norms.shape == (16,)
    assert len(got.grads) == len(expected) == len(list(head.parameters()))
    for g, e in zip(got.grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)
    assert all(p.grad is None for p in head.parameters())  # no parameter gradient was computed


def test_an_empty_poisson_batch_gives_zero_gradients() -> None:
    head = FusionHead(MultimodalConfig(roi=(32, 32, 8), feature_size=12))
    clipper = LinearClipper(head, 1.0)
    img, txt, pol, y = _batch(0, seed=0)
    with clipper.record():
        logits = head(img, txt, pol)
    got = clipper.clipped_sum(F.cross_entropy(logits, y, reduction="none"))
    assert all(bool((g == 0).all()) and g.shape == p.shape for g, p in zip(got.grads, head.parameters(), strict=True))


def test_refuses_what_it_cannot_clip_exactly() -> None:
    with pytest.raises(ValueError, match=r"only nn\.Linear"):
        LinearClipper(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), 1.0)
    with pytest.raises(ValueError, match="positive"):
        LinearClipper(nn.Linear(4, 4), 0.0)
    shared = nn.Linear(4, 4)
    clipper = LinearClipper(shared, 1.0)
    with pytest.raises(ValueError, match="twice"), clipper.record():
        shared(shared(torch.randn(3, 4)))
    seq = nn.Linear(4, 2)
    clipper = LinearClipper(seq, 1.0)
    with pytest.raises(ValueError, match=r"\[batch, features\]"), clipper.record():
        seq(torch.randn(3, 5, 4))
