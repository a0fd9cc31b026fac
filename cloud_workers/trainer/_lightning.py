"""The Lightning pieces: the data module (seeded split, per-epoch seeded crops and order) and the model module."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.nn import functional as F

from streams.multimodal import MultimodalConfig, MultimodalNet, build_model, load_tokenizer
from streams.multimodal._manifest import Case
from streams.multimodal._transforms import build_transforms, seed_transforms

__all__ = ["MultimodalDataModule", "MultimodalModule", "split_cases"]


def split_cases(cases: Sequence[Case], val_fraction: float, seed: int) -> tuple[list[Case], list[Case]]:
    """A seeded split stratified by label (each class keeps at least one case on each side when it can)."""
    rng = np.random.default_rng([seed, 0x5E1])
    train: list[Case] = []
    val: list[Case] = []
    for label in sorted({c.label for c in cases}):
        group = [c for c in cases if c.label == label]
        order = rng.permutation(len(group))
        n_val = round(val_fraction * len(group))
        n_val = min(max(n_val, 1 if len(group) > 1 and val_fraction > 0 else 0), len(group) - 1)
        val += [group[int(i)] for i in order[:n_val]]
        train += [group[int(i)] for i in order[n_val:]]
    return sorted(train, key=lambda c: c.case_id), sorted(val, key=lambda c: c.case_id)


class _EpochSampler(torch.utils.data.Sampler[int]):
    """Shuffles with a generator seeded by ``(seed, epoch)`` and reseeds the random transforms the same way, at
    the moment an epoch starts iterating (after a resumed trainer has restored its epoch counter)."""

    def __init__(self, n: int, seed: int, epoch: Callable[[], int], transforms: Any) -> None:
        self.n, self.seed, self.epoch, self.transforms = n, seed, epoch, transforms

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        e = self.epoch()
        seed_transforms(self.transforms, int(np.random.SeedSequence([self.seed, e]).generate_state(1)[0]))
        gen = torch.Generator().manual_seed(self.seed * 100_003 + e)
        return iter(torch.randperm(self.n, generator=gen).tolist())


class MultimodalDataModule(pl.LightningDataModule):
    """Cached MONAI datasets of the train and validation cases.

    The training order and crops of epoch ``e`` are seeded with ``(seed, e)``, so a run resumed from a checkpoint
    sees exactly the batches the uninterrupted run saw.
    """

    def __init__(
        self,
        train_cases: Sequence[Case],
        val_cases: Sequence[Case],
        config: MultimodalConfig,
        *,
        batch_size: int = 2,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.train_cases, self.val_cases = list(train_cases), list(val_cases)
        self.config = config
        self.batch_size = batch_size
        self.seed = seed
        self._train_ds: Any = None
        self._val_ds: Any = None

    def setup(self, stage: str | None = None) -> None:
        from monai.data.dataset import CacheDataset

        if self._train_ds is not None:
            return
        assert self.config.text_encoder_dir is not None
        tok = load_tokenizer(self.config.text_encoder_dir)
        cfg = self.config
        train_t = build_transforms(cfg.roi, tok, train=True, max_tokens=cfg.max_tokens, seed=self.seed)
        val_t = build_transforms(cfg.roi, tok, train=False, max_tokens=cfg.max_tokens, seed=self.seed)
        self._train_ds = CacheDataset([c.sample() for c in self.train_cases], train_t, progress=False)
        self._val_ds = CacheDataset([c.sample() for c in self.val_cases], val_t, progress=False)

    def _epoch(self) -> int:
        trainer = getattr(self, "trainer", None)
        return int(trainer.current_epoch) if trainer is not None else 0

    def train_dataloader(self) -> Any:
        from monai.data.dataloader import DataLoader

        sampler = _EpochSampler(len(self._train_ds), self.seed, self._epoch, self._train_ds.transform)
        return DataLoader(self._train_ds, batch_size=self.batch_size, sampler=sampler, num_workers=0)

    def val_dataloader(self) -> Any:
        from monai.data.dataloader import DataLoader

        return DataLoader(self._val_ds, batch_size=self.batch_size, shuffle=False, num_workers=0)


def _inputs(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    return batch["image"], batch["input_ids"], batch["attention_mask"], batch["policy"]


class MultimodalModule(pl.LightningModule):
    """Cross-entropy training of :class:`~streams.multimodal.MultimodalNet`; logs loss, AUROC and accuracy.

    Hyper-parameters (the network config included) are saved in every checkpoint, so
    ``MultimodalModule.load_from_checkpoint(path)`` rebuilds the same network.
    """

    def __init__(self, config: dict[str, Any], *, lr: float = 1e-3, weight_decay: float = 1e-4, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()
        self.net_config = MultimodalConfig.from_dict(config)
        self.net: MultimodalNet = build_model(self.net_config, seed=seed)
        self._val: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        self.step_losses: dict[int, float] = {}

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(*inputs)
        return out

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # Dropout draws from the global RNG: seed it per step, so a resumed run draws what the first would have.
        torch.manual_seed(int(self.hparams["seed"]) * 1_000_003 + int(self.global_step))

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self.net(*_inputs(batch))
        loss = F.cross_entropy(logits.float(), batch["label"])
        self.step_losses[int(self.global_step)] = float(loss.detach())
        self.log("train_loss", loss, prog_bar=True, batch_size=int(batch["label"].shape[0]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        logits = self.net(*_inputs(batch)).float()
        loss = F.cross_entropy(logits, batch["label"], reduction="sum")
        self._val.append((logits.softmax(dim=1).detach(), batch["label"].detach(), loss.detach()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        from torchmetrics.functional.classification import multiclass_accuracy, multiclass_auroc

        probs = torch.cat([v[0] for v in self._val])
        labels = torch.cat([v[1] for v in self._val])
        loss = torch.stack([v[2] for v in self._val]).sum() / labels.numel()
        k = self.net_config.num_classes
        self._val.clear()
        self.log("val_loss", loss, prog_bar=True)
        self.log("val_acc", multiclass_accuracy(probs, labels, num_classes=k, average="micro"), prog_bar=True)
        auroc = (
            multiclass_auroc(probs, labels, num_classes=k)
            if int(labels.max()) != int(labels.min())
            else torch.tensor(0.5)
        )
        self.log("val_auroc", auroc, prog_bar=True)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.net.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=float(self.hparams["lr"]), weight_decay=float(self.hparams["weight_decay"]))
