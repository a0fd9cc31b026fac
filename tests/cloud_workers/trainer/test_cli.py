"""``medkiosk train ...`` and ``medkiosk trainer`` from the command line (in-process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medkiosk.__main__ import main


def test_train_synthetic_writes_a_valid_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["train", "synthetic", "--out", str(tmp_path / "syn"), "--cases", "4", "--size", "24,24,4",
            "--distractor-conflict", "0.8"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["synthetic"] is True and Path(out["manifest"]).is_file()
    assert "Distractor conflict: 0.8" in (tmp_path / "syn" / "DATA_CARD.md").read_text()


def test_train_multimodal_reports_manifest_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "cases.jsonl"
    bad.write_text('{"case_id": "c1", "dicom_dir": "nowhere", "report": "x", "policy": [1], "label": 0}\n')
    code = main(["train", "multimodal", "--manifest", str(bad), "--text-encoder", str(tmp_path), "--out",
                 str(tmp_path / "run"), "--no-progress"])  # fmt: skip
    assert code == 2
    assert "line 1 (c1): DICOM folder" in capsys.readouterr().err


def test_roi_must_be_three_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "multimodal", "--manifest", "m", "--text-encoder", "d", "--out", "o", "--roi", "32,32"])
    assert "expected 3 positive integers" in capsys.readouterr().err


def test_help_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom medkiosk.__main__ import build_parser\nbuild_parser()\n"
        "heavy = [m for m in ('torch', 'monai', 'lightning', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
