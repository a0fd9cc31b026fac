"""One training run: manifest -> Lightning fit (checkpoints, early stopping, CSV log) -> metrics."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streams.multimodal._manifest import load_manifest

__all__ = ["TrainConfig", "TrainResult", "lightning_warnings_quiet", "train_multimodal"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """A run by hand (``medkiosk train multimodal``) or for one training request."""

    manifest: Path
    text_encoder_dir: Path
    out: Path
    roi: tuple[int, int, int] = (256, 256, 32)
    epochs: int = 20
    batch_size: int = 2
    lr: float = 1e-3
    val_fraction: float = 0.25
    seed: int = 0
    feature_size: int = 48
    depths: tuple[int, int, int, int] = (2, 2, 2, 2)
    window_size: tuple[int, int, int] = (7, 7, 7)
    max_tokens: int = 64
    policy_hidden: int = 64
    head_hidden: int = 64
    fusion: str = "gated"
    #: Train the encoders too (default: frozen, only the policy net, gate and head learn).
    fine_tune: bool = False
    patience: int = 5
    #: A checkpoint to resume from, or "last" for ``out/checkpoints/last.ckpt``.
    resume: str | None = None
    #: "auto" picks a GPU when one is present (then bf16/fp16 autocast), else the CPU.
    accelerator: str = "auto"
    progress_bar: bool = True
    #: Also keep one checkpoint per epoch (``epoch=N.ckpt``), e.g. to resume from an earlier point.
    keep_every_epoch: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TrainResult:
    out: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics: dict[str, float]
    epochs_run: int
    step_losses: dict[int, float]


_IGNORED = (
    r".*does not have many workers.*",
    r".*GPU available but not used.*",
    r".*The number of training batches.*is smaller than the logging interval.*",
    r".*Checkpoint directory .* exists and is not empty.*",
    r".*`isinstance\(treespec, LeafSpec\)` is deprecated.*",
    r".*LeafSpec.*deprecated.*",
    r".*You are using a CUDA device.*",
    r".*Total length of .* across ranks is zero.*",
    r".*treespec.*",
    r".*module\(s\) in eval mode at the start of training.*",
    r".*The dirpath has changed from .* won't be reloaded.*",
)


@contextmanager
def lightning_warnings_quiet() -> Iterator[None]:
    """Lightning's advice for big clusters (worker counts, logging intervals) is noise for a small run."""
    with warnings.catch_warnings():
        for pattern in _IGNORED:
            warnings.filterwarnings("ignore", message=pattern)
        yield


def _precision(accelerator: str) -> str:
    import torch

    if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "32-true"


def net_config(cfg: TrainConfig, policy_features: int) -> dict[str, Any]:
    """The :class:`~streams.multimodal.MultimodalConfig` of a run, as a dict."""
    from transformers import AutoConfig

    from streams.multimodal import MultimodalConfig

    hidden = int(AutoConfig.from_pretrained(str(cfg.text_encoder_dir), local_files_only=True).hidden_size)
    heads = (3, 6, 12, 24)
    return MultimodalConfig(
        roi=cfg.roi,
        feature_size=cfg.feature_size,
        depths=cfg.depths,
        num_heads=heads,
        window_size=cfg.window_size,
        text_encoder_dir=str(cfg.text_encoder_dir),
        text_hidden=hidden,
        max_tokens=cfg.max_tokens,
        policy_features=policy_features,
        policy_hidden=cfg.policy_hidden,
        head_hidden=cfg.head_hidden,
        fusion="concat" if cfg.fusion == "concat" else "gated",
        freeze_encoders=not cfg.fine_tune,
    ).to_dict()


def train_multimodal(cfg: TrainConfig) -> TrainResult:
    """Validate the manifest, fit, and return the best checkpoint's validation metrics."""
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint, TQDMProgressBar
    from lightning.pytorch.loggers import CSVLogger

    from cloud_workers.trainer._lightning import MultimodalDataModule, MultimodalModule, split_cases
    from streams.multimodal import MultimodalConfig

    cases = load_manifest(cfg.manifest)
    mcfg = net_config(cfg, len(cases[0].policy))
    train_cases, val_cases = split_cases(cases, cfg.val_fraction, cfg.seed)
    if not train_cases or not val_cases:
        raise ValueError(f"need cases on both sides of the split, got {len(train_cases)} / {len(val_cases)}")
    cfg.out.mkdir(parents=True, exist_ok=True)
    (cfg.out / "split.json").write_text(
        json.dumps({"train": [c.case_id for c in train_cases], "val": [c.case_id for c in val_cases]}) + "\n"
    )
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data = MultimodalDataModule(
        train_cases, val_cases, MultimodalConfig.from_dict(mcfg), batch_size=cfg.batch_size, seed=cfg.seed
    )
    module = MultimodalModule(mcfg, lr=cfg.lr, seed=cfg.seed)
    ckpt_dir = cfg.out / "checkpoints"
    checkpoint = ModelCheckpoint(
        dirpath=ckpt_dir, filename="best", monitor="val_loss", mode="min", save_top_k=1, save_last=True
    )
    callbacks: list[Any] = [checkpoint, EarlyStopping(monitor="val_loss", mode="min", patience=cfg.patience)]
    if cfg.keep_every_epoch:
        callbacks.append(ModelCheckpoint(dirpath=ckpt_dir, filename="{epoch}", save_top_k=-1, every_n_epochs=1))
    if cfg.progress_bar:
        callbacks.append(TQDMProgressBar(refresh_rate=1))
    trainer = pl.Trainer(
        max_epochs=cfg.epochs,
        accelerator=cfg.accelerator,
        devices=1,
        precision=_precision(cfg.accelerator),  # type: ignore[arg-type]
        deterministic=True,
        callbacks=callbacks,
        logger=CSVLogger(str(cfg.out), name="logs"),
        enable_progress_bar=cfg.progress_bar,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=str(cfg.out),
    )
    resume = str(ckpt_dir / "last.ckpt") if cfg.resume == "last" else cfg.resume
    with lightning_warnings_quiet():
        trainer.fit(module, datamodule=data, ckpt_path=resume)
    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else ckpt_dir / "last.ckpt"
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val_")}
    if checkpoint.best_model_score is not None:
        metrics["best_val_loss"] = float(checkpoint.best_model_score)
    (cfg.out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return TrainResult(
        out=cfg.out,
        best_checkpoint=best,
        last_checkpoint=ckpt_dir / "last.ckpt",
        metrics=metrics,
        epochs_run=int(trainer.current_epoch),
        step_losses=dict(module.step_losses),
    )
