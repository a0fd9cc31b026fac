"""The gating ablation: gated fusion against plain concatenation on the same frozen-encoder features.

Both heads train on the same cached ``[img 512 | txt 512 | policy]`` features (the encoders are frozen, so each
case is encoded once), from the same seeds, with the same optimizer and budget; only the fusion differs:

* ``gated``: ``head(cat(img, txt) * sigmoid(gate(policy_net(policy))))``;
* ``concat``: ``head(cat(img, txt, policy_net(policy)))``: the baseline sees everything the gated model sees,
  the switch included (through the same policy net), but has to learn the switch's interaction with the
  features inside its MLP head instead of through a multiplicative gate.

The set (:data:`ABLATION_SET`) is the synthetic switch set with a *conflicting distractor*: the modality the
switch does not name states the opposite of the label in 80 % of the cases, so a model that reads both
modalities the same way whatever the switch is capped near 60 %. Its policy vector is the switch alone: with
the usual seven extra noise features and ~100 training cases the gate memorises the training cases through the
noise instead of learning the switch (measured: gated and concat both at chance on held-out cases). The lesion
radius is 0.35 of the in-plane size, so a frozen, randomly initialised Swin at the test ROI separates lesion from
no lesion on held-out cases; the report encoder is the pretrained MiniLM, which separates the report templates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from cloud_workers.trainer._synthetic import SyntheticConfig, generate_synthetic
from streams.multimodal import EMBED_DIM, CaseFeatures, FusionHead, MultimodalConfig

__all__ = [
    "ABLATION_SET",
    "AblationConfig",
    "AblationResult",
    "FusionScore",
    "ablation_features",
    "gate_means",
    "gating_ablation",
    "train_fusion_head",
]

#: The switch set the ablation runs on (see the module docstring); 96 cases train, 32 are held out.
ABLATION_SET = SyntheticConfig(cases=128, size=(32, 32, 8), policy_features=1, lesion_radius=0.35,
                               distractor_conflict=0.8, seed=0)  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class AblationConfig:
    """The training budget both heads get (Adam, shuffled mini-batches, seeded)."""

    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    #: Each head is trained once per seed (initialisation and shuffling); accuracies and gates are averaged.
    seeds: tuple[int, ...] = (0, 1, 2)
    #: Which policy feature is the switch (the synthetic set's feature 0).
    switch_index: int = 0


@dataclass(frozen=True, kw_only=True)
class FusionScore:
    """Held-out accuracy of one fusion (mean over the seeds, and per seed), and the mean gate on each half of the
    fused features per switch state (1.0 everywhere for concat, which has no gate)."""

    fusion: str
    train_accuracy: float
    test_accuracy: float
    test_accuracies: tuple[float, ...]
    #: ``{switch value: mean gate over the 512 image dims}`` on the held-out cases (1.0 everywhere for concat).
    gate_image: dict[int, float]
    gate_text: dict[int, float]


@dataclass(frozen=True, kw_only=True)
class AblationResult:
    gated: FusionScore
    concat: FusionScore
    n_train: int
    n_test: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tensors(features: CaseFeatures) -> tuple[torch.Tensor, ...]:
    return tuple(torch.as_tensor(a) for a in (features.img, features.txt, features.policy, features.y))


def train_fusion_head(
    features: CaseFeatures, config: MultimodalConfig, ablation: AblationConfig, seed: int = 0
) -> FusionHead:
    """A :class:`FusionHead` of ``config.fusion`` trained on ``features`` (initialised and shuffled under ``seed``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = FusionHead(config)
    opt = torch.optim.Adam(head.parameters(), lr=ablation.lr, weight_decay=ablation.weight_decay)
    img, txt, pol, y = _tensors(features)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(ablation.epochs):
        order = torch.randperm(features.n, generator=gen)
        for start in range(0, features.n, ablation.batch_size):
            idx = order[start : start + ablation.batch_size]
            opt.zero_grad()
            F.cross_entropy(head(img[idx], txt[idx], pol[idx]), y[idx]).backward()  # type: ignore[no-untyped-call]
            opt.step()
    return head.eval()


def _accuracy(head: FusionHead, features: CaseFeatures) -> float:
    img, txt, pol, y = _tensors(features)
    with torch.no_grad():
        return float((head(img, txt, pol).argmax(dim=1) == y).float().mean())


def gate_means(head: FusionHead, features: CaseFeatures, switch_index: int = 0) -> tuple[dict[int, float], ...]:
    """Mean gate over the image dims and over the text dims, per value of the switch feature."""
    pol = torch.as_tensor(features.policy)
    with torch.no_grad():
        gates = head.gates(pol)
    switch = features.policy[:, switch_index].round().astype(np.int64)
    image, text = {}, {}
    for value in sorted({int(v) for v in switch}):
        rows = torch.from_numpy(np.flatnonzero(switch == value))
        image[value] = float(gates[rows, :EMBED_DIM].mean())
        text[value] = float(gates[rows, EMBED_DIM:].mean())
    return image, text


def _mean(dicts: list[dict[int, float]]) -> dict[int, float]:
    return {k: float(np.mean([d[k] for d in dicts])) for k in dicts[0]}


def gating_ablation(
    train: CaseFeatures, test: CaseFeatures, config: MultimodalConfig, ablation: AblationConfig | None = None
) -> AblationResult:
    """Train a gated and a concat head on ``train`` under the same budget and seeds; score both on ``test``."""
    ab = ablation or AblationConfig()
    scores = {}
    for fusion in ("gated", "concat"):
        heads = [train_fusion_head(train, config.replace(fusion=fusion), ab, seed) for seed in ab.seeds]
        gates = [gate_means(h, test, ab.switch_index) for h in heads]
        accuracies = tuple(_accuracy(h, test) for h in heads)
        scores[fusion] = FusionScore(
            fusion=fusion,
            train_accuracy=float(np.mean([_accuracy(h, train) for h in heads])),
            test_accuracy=float(np.mean(accuracies)),
            test_accuracies=accuracies,
            gate_image=_mean([g[0] for g in gates]),
            gate_text=_mean([g[1] for g in gates]),
        )
    return AblationResult(gated=scores["gated"], concat=scores["concat"], n_train=train.n, n_test=test.n)


def ablation_features(root: Path, network: MultimodalConfig, synthetic: SyntheticConfig = ABLATION_SET) -> CaseFeatures:
    """Write the switch set under ``root`` and encode it once with the frozen encoders of ``network`` (seed 0)."""
    from streams.multimodal import build_model, encode_cases, load_manifest

    manifest = generate_synthetic(root, synthetic)
    model = build_model(network.replace(policy_features=synthetic.policy_features), seed=0)
    cases = load_manifest(manifest, policy_features=synthetic.policy_features, check_dicom=False)
    return encode_cases(model, cases, batch_size=32)
