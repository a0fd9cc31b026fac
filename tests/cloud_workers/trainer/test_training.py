"""One short Lightning run on the synthetic set (concordant reports, real encoders), shared by the tests:
it learns above chance, writes best/last checkpoints and a CSV log, resumes to the identical next-step loss,
exports to ONNX with ONNX Runtime parity and to a MONAI bundle that MONAI's ConfigParser rebuilds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from cloud_workers.trainer import (
    MultimodalModule,
    SyntheticConfig,
    TrainConfig,
    TrainResult,
    export_onnx,
    generate_synthetic,
    load_bundle,
    onnx_parity,
    save_bundle,
    train_multimodal,
)
from cloud_workers.trainer._export import example_inputs
from tests.streams.multimodal.helpers import TEST_ROI, minilm_dir

pytestmark = [pytest.mark.slow]
EPOCHS = 3


def _config(manifest: Path, out: Path, **kw: object) -> TrainConfig:
    base: dict[str, object] = {
        "manifest": manifest,
        "text_encoder_dir": minilm_dir(),
        "out": out,
        "roi": TEST_ROI,
        "epochs": EPOCHS,
        "batch_size": 4,
        "lr": 1e-3,
        "val_fraction": 0.34,
        "feature_size": 12,
        "depths": (1, 1, 1, 1),
        "window_size": (4, 4, 4),
        "max_tokens": 48,
        "patience": 100,
        "progress_bar": False,
        "keep_every_epoch": True,
        "seed": 0,
    }
    base.update(kw)
    return TrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, TrainResult]:
    root = tmp_path_factory.mktemp("train")
    manifest = generate_synthetic(root / "data", SyntheticConfig(cases=24, size=(36, 36, 10), concordant=True, seed=0))
    cfg = _config(manifest, root / "run")
    return cfg, train_multimodal(cfg)


def test_a_short_run_learns_above_chance_and_logs(run: tuple[TrainConfig, TrainResult]) -> None:
    cfg, result = run
    assert result.epochs_run == EPOCHS
    assert result.best_checkpoint.is_file() and result.last_checkpoint.is_file()
    assert result.metrics["val_auroc"] > 0.6, result.metrics
    rows = list(csv.DictReader((cfg.out / "logs" / "version_0" / "metrics.csv").open()))
    assert {"train_loss", "val_loss", "val_auroc", "val_acc"} <= set(rows[0])
    assert sum(1 for r in rows if r["val_loss"]) == EPOCHS
    assert json.loads((cfg.out / "metrics.json").read_text())["val_auroc"] == result.metrics["val_auroc"]


def test_resume_gives_the_identical_next_step_loss(run: tuple[TrainConfig, TrainResult], tmp_path: Path) -> None:
    cfg, first = run
    ckpt = cfg.out / "checkpoints" / f"epoch={EPOCHS - 2}.ckpt"
    assert ckpt.is_file()
    resumed = train_multimodal(_config(cfg.manifest, tmp_path / "resumed", resume=str(ckpt)))
    steps = sorted(resumed.step_losses)
    assert steps and steps[0] > 0  # it started where the checkpoint left off
    for step in steps:
        assert resumed.step_losses[step] == pytest.approx(first.step_losses[step], rel=1e-6, abs=1e-7)


def test_checkpoint_restores_hyper_parameters_and_exports_with_parity(
    run: tuple[TrainConfig, TrainResult], tmp_path: Path
) -> None:
    _, result = run
    module = MultimodalModule.load_from_checkpoint(str(result.best_checkpoint), weights_only=False)
    net = module.net.eval()
    assert net.config.roi == TEST_ROI and net.config.fusion == "gated"
    path = export_onnx(net, tmp_path / "model.onnx")
    assert onnx_parity(net, path, batch=3) < 1e-4


def test_bundle_layout_is_opened_by_monai(run: tuple[TrainConfig, TrainResult], tmp_path: Path) -> None:
    cfg, result = run
    net = MultimodalModule.load_from_checkpoint(str(result.best_checkpoint), weights_only=False).net.eval()
    root = save_bundle(
        net, tmp_path / "bundle", metrics=result.metrics, data_card=cfg.manifest.parent / "DATA_CARD.md", onnx=False
    )
    for rel in ("configs/metadata.json", "configs/inference.json", "models/model.pt", "docs/data_card.md"):
        assert (root / rel).is_file(), rel
    info = load_bundle(root)
    meta = json.loads((root / "configs" / "metadata.json").read_text())
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == list(TEST_ROI)
    assert meta["medkiosk"]["metrics"]["val_auroc"] == result.metrics["val_auroc"]
    assert info.metadata["version"] == meta["version"]
    inputs = example_inputs(net.config, batch=2)
    with torch.no_grad():
        torch.testing.assert_close(info.model(*inputs), net(*inputs))
