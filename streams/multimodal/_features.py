"""Frozen-encoder features of a set of cases: what the fusion head trains on when the encoders are frozen.

With both encoders frozen (the federated default) their outputs never change, so each case is encoded once
(deterministic centre crop) and the policy net, gate and head train on ``[img 512 | txt 512 | policy P]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from streams.multimodal._config import EMBED_DIM
from streams.multimodal._manifest import Case
from streams.multimodal._model import MultimodalNet
from streams.multimodal._transforms import build_transforms

__all__ = ["CaseFeatures", "encode_cases"]


@dataclass(frozen=True, slots=True)
class CaseFeatures:
    """``img`` and ``txt``: ``(n, 512)``; ``policy``: ``(n, P)``; ``y``: ``(n,)`` int64 labels."""

    img: NDArray[np.float32]
    txt: NDArray[np.float32]
    policy: NDArray[np.float32]
    y: NDArray[np.int64]
    case_ids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        n = self.y.shape[0]
        if self.img.shape != (n, EMBED_DIM) or self.txt.shape != (n, EMBED_DIM) or self.policy.shape[0] != n:
            raise ValueError(f"inconsistent feature shapes {self.img.shape} {self.txt.shape} {self.policy.shape}")

    @property
    def n(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: Sequence[int] | NDArray[np.int64]) -> CaseFeatures:
        """The cases at ``index``."""
        idx = np.asarray(index, dtype=np.int64)
        ids = tuple(self.case_ids[int(i)] for i in idx) if self.case_ids else ()
        return CaseFeatures(self.img[idx], self.txt[idx], self.policy[idx], self.y[idx], ids)

    def save(self, path: str) -> None:
        np.savez(path, img=self.img, txt=self.txt, policy=self.policy, y=self.y, case_ids=np.array(self.case_ids))

    @classmethod
    def load(cls, path: str) -> CaseFeatures:
        with np.load(path, allow_pickle=False) as f:
            ids = tuple(str(v) for v in f["case_ids"])
            return cls(f["img"], f["txt"], f["policy"], f["y"].astype(np.int64), ids)


def encode_cases(model: MultimodalNet, cases: Sequence[Case], *, batch_size: int = 4) -> CaseFeatures:
    """Run the (frozen) encoders of ``model`` over ``cases`` through the evaluation transforms (centre crop)."""
    from streams.multimodal._encoders import load_tokenizer

    cfg = model.config
    assert cfg.text_encoder_dir is not None
    transform = build_transforms(cfg.roi, load_tokenizer(cfg.text_encoder_dir), train=False, max_tokens=cfg.max_tokens)
    imgs, txts, pols, ys = [], [], [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(cases), batch_size):
            samples = [transform(c.sample()) for c in cases[start : start + batch_size]]
            image = torch.stack([s["image"] for s in samples])
            ids = torch.stack([s["input_ids"] for s in samples])
            mask = torch.stack([s["attention_mask"] for s in samples])
            img, txt = model.embed(image, ids, mask)
            imgs.append(img.float().numpy())
            txts.append(txt.float().numpy())
            pols.append(torch.stack([s["policy"] for s in samples]).numpy())
            ys += [int(s["label"]) for s in samples]
    model.train(was_training)
    return CaseFeatures(
        np.concatenate(imgs).astype(np.float32),
        np.concatenate(txts).astype(np.float32),
        np.concatenate(pols).astype(np.float32),
        np.asarray(ys, dtype=np.int64),
        tuple(c.case_id for c in cases),
    )
