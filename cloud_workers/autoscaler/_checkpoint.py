"""Versioned LSTM checkpoints: hyper-parameters, weights, scale and provenance in one ``torch.save`` file.

A checkpoint directory holds ``forecaster-v0001.pt``, ``forecaster-v0002.pt``, ...; training writes the
next version, the service loads the newest (or a given path). Files are read with
``torch.load(weights_only=True)``, so a checkpoint can carry tensors and plain values only, never code.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloud_workers.autoscaler._lstm import LstmForecaster

__all__ = [
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "checkpoint_versions",
    "latest_checkpoint",
    "load_checkpoint",
    "load_checkpoint_bytes",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "medkiosk.autoscaler.lstm/1"
_NAME = re.compile(r"^forecaster-v(\d{4,})\.pt$")


class CheckpointError(ValueError):
    """A file that is not a forecaster checkpoint this code can load."""


def checkpoint_versions(directory: Path) -> list[tuple[int, Path]]:
    """``(version, path)`` of every checkpoint in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(directory: Path) -> Path | None:
    versions = checkpoint_versions(directory)
    return versions[-1][1] if versions else None


def save_checkpoint(forecaster: LstmForecaster, directory: Path, *, provenance: dict[str, Any]) -> Path:
    """Write the next version into ``directory`` (atomically: a reader never sees half a file)."""
    import torch

    if forecaster.net is None:
        raise ValueError("train the forecaster before saving it")
    directory.mkdir(parents=True, exist_ok=True)
    versions = checkpoint_versions(directory)
    version = versions[-1][0] + 1 if versions else 1
    path = directory / f"forecaster-v{version:04d}.pt"
    cfg = forecaster.config_dict()
    cfg["quantiles"] = list(cfg["quantiles"])
    blob = {
        "format": CHECKPOINT_FORMAT,
        "version": version,
        "created_at": time.time(),
        "config": cfg,
        "scale": forecaster.scale,
        "state_dict": forecaster.net.state_dict(),
        "provenance": provenance,
        "history": forecaster.history,
    }
    tmp = path.with_suffix(".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_checkpoint(path: Path) -> LstmForecaster:
    """Restore a forecaster (config, weights, scale); raises ``CheckpointError`` on anything else."""
    return load_checkpoint_bytes(path.read_bytes(), source=str(path))


def load_checkpoint_bytes(data: bytes, *, source: str = "checkpoint") -> LstmForecaster:
    """``load_checkpoint`` for bytes (a model version received from the bus)."""
    import io

    import torch

    from cloud_workers.autoscaler._lstm import LstmConfig, LstmForecaster, LstmNet

    path = source
    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable checkpoint ({exc.__class__.__name__})") from exc
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint")
    known = {f.name for f in fields(LstmConfig)}
    try:
        raw = dict(blob["config"])
        if not set(raw) <= known:
            raise CheckpointError(f"{path}: unknown config keys {sorted(set(raw) - known)}")
        raw["quantiles"] = tuple(float(q) for q in raw["quantiles"])
        cfg = LstmConfig(**raw)
        net = LstmNet(cfg)
        net.load_state_dict(blob["state_dict"])
        version, scale = int(blob["version"]), float(blob["scale"])
    except CheckpointError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: weights do not fit the config ({exc})") from exc
    net.eval()
    digest = hashlib.sha256(data).hexdigest()[:12]
    return LstmForecaster(
        cfg=cfg,
        net=net,
        scale=scale,
        model_version=f"v{version}-{digest}",
        version=version,
        history=list(blob.get("history", [])),
    )
