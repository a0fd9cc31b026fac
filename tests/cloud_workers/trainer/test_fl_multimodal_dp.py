"""The multimodal FL trainer's DP-SGD round (Linear-layer clipping, no per-example gradients) gives the update
that opacus's per-sample DP-SGD gives with the same keyed Poisson sampling and keyed noise."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from numpy.typing import NDArray
from torch.nn import functional as F

from edge_agent.federated._multimodal import MultimodalFlTrainer, keyed_normal
from edge_agent.federated._randomness import KeyedStream, derive_key
from streams.multimodal import EMBED_DIM, CaseFeatures, FusionHead, LinearClipper, MultimodalConfig, load_flat_params

CFG = MultimodalConfig(roi=(32, 32, 8), feature_size=12)
NOISE, CLIP, LR, BATCH = 0.7, 0.5, 0.1, 6


def _features(n: int) -> CaseFeatures:
    rng = np.random.default_rng(3)
    f32 = np.float32
    return CaseFeatures(rng.normal(size=(n, EMBED_DIM)).astype(f32), rng.normal(size=(n, EMBED_DIM)).astype(f32),
                        rng.normal(size=(n, 8)).astype(f32), rng.integers(0, 2, n).astype(np.int64))  # fmt: skip


def _opacus_round(
    feat: CaseFeatures, start: NDArray[np.float64], key: bytes, round_id: int, batches: int
) -> NDArray[np.float64]:
    """One local epoch as opacus would run it: GradSampleModule + DPOptimizer, the noise added by a step hook."""
    from opacus import GradSampleModule
    from opacus.optimizers import DPOptimizer

    head = FusionHead(CFG)
    load_flat_params(head, start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gsm = GradSampleModule(head)
        opt = DPOptimizer(torch.optim.SGD(head.parameters(), lr=LR), noise_multiplier=0.0, max_grad_norm=CLIP,
                          expected_batch_size=max(1, feat.n // batches), loss_reduction="mean")  # fmt: skip
    noise: list[bytes] = []

    def add_noise(_: object) -> None:
        z = keyed_normal(noise[-1], sum(p.numel() for p in opt.params)) * NOISE * CLIP / opt.expected_batch_size
        offset = 0
        for p in opt.params:
            p.grad += torch.from_numpy(z[offset : offset + p.numel()]).to(p.dtype).reshape(p.shape)
            offset += p.numel()

    opt.attach_step_hook(add_noise)
    tensors = [torch.as_tensor(a) for a in (feat.img, feat.txt, feat.policy, feat.y)]
    for step in range(batches):
        rows = KeyedStream(derive_key(key, "sample", round_id, step)).bernoulli(feat.n, 1.0 / batches)
        idx = torch.from_numpy(np.flatnonzero(rows).astype(np.int64))
        noise.append(derive_key(key, "noise", round_id, step))
        opt.zero_grad()
        img, txt, pol = (t[idx].requires_grad_(True) for t in tensors[:3])  # as opacus's hooks want
        y = tensors[3][idx]
        F.cross_entropy(gsm(img, txt, pol), y).backward()  # type: ignore[no-untyped-call]
        opt.step()
    params = np.concatenate([p.detach().double().reshape(-1).numpy() for p in head.parameters()])
    return np.asarray(params - start, dtype=np.float64)


def test_round_update_equals_opacus_dp_sgd_with_the_same_keys() -> None:
    feat = _features(24)
    trainer = MultimodalFlTrainer(feat, CFG, batch_size=BATCH, lr=LR, noise_multiplier=NOISE, max_grad_norm=CLIP)
    assert isinstance(trainer._clipper, LinearClipper)  # the trainer clips without per-example gradients
    start = trainer.initial_params(0)
    key = bytes(range(32))
    ours = trainer.train_keyed(start, 4, key)
    reference = _opacus_round(feat, start, key, 4, trainer.steps_per_round)
    assert np.linalg.norm(reference) > 0
    np.testing.assert_allclose(ours.update, reference, rtol=0, atol=1e-5)
    assert ours.round_dp == (NOISE, trainer.sample_rate, trainer.steps_per_round)


def test_keyed_normal_is_the_keystream_of_its_key_and_standard_normal() -> None:
    a, b = keyed_normal(b"k" * 32, 200_000), keyed_normal(b"k" * 32, 200_000)
    np.testing.assert_array_equal(a, b)  # reproducible from the key alone
    assert not np.array_equal(a, keyed_normal(b"j" * 32, 200_000))
    assert abs(a.mean()) < 0.01 and abs(a.var() - 1) < 0.01 and abs((a**4).mean() - 3) < 0.05
    assert keyed_normal(b"k" * 32, 0).shape == (0,)
