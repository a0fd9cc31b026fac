"""``medkiosk autoscaler train`` from the command line: one JSON line, a versioned checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud_workers.autoscaler import load_checkpoint
from medkiosk.__main__ import main

from .test_checkpoint import write_trace


def test_train_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = write_trace(tmp_path / "trace.csv")
    argv = ["autoscaler", "train", "--trace", str(csv), "--out", str(tmp_path / "models")]
    argv += ["--epochs", "1", "--hidden", "8", "--window", "12", "--test-days", "2"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["checkpoint"].endswith("forecaster-v0001.pt")
    assert {"mae_lstm", "mae_last_value", "mae_seasonal_naive"} <= set(report)
    assert load_checkpoint(Path(report["checkpoint"])).cfg.window == 12


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["autoscaler", "--group", "no-members"])
    with pytest.raises(FileNotFoundError):
        main(["autoscaler", "train", "--trace", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "m")])
    with pytest.raises(ValueError, match="needs --checkpoint"):
        main(["autoscaler", "--forecaster", "lstm", "--keys-dir", str(tmp_path)])
