"""``medkiosk fl ...``: every command has help; ``fl run`` trains end to end on its own embedded broker, every
role its own process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medkiosk.__main__ import build_parser

COMMANDS = [["fl"], ["fl", "run"], ["fl", "coordinator"], ["fl", "aggregator"], ["fl", "keyholder"], ["fl", "client"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*argv, "--help"])
    assert info.value.code == 0
    assert "usage: medkiosk fl" in capsys.readouterr().out


@pytest.mark.broker
@pytest.mark.slow
def test_fl_run_end_to_end(tmp_path: Path) -> None:
    plot = tmp_path / "fl.png"
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", "fl", "run", "--hospitals", "3", "--rounds", "2", "--key-bits", "1024",
         "--state-dir", str(tmp_path), "--plot", str(plot)],
        capture_output=True, text=True, timeout=170, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary) == {
        "rounds", "accuracy", "centralized_accuracy", "epsilon", "delta", "bytes_per_update", "round_s_p50",
    }  # fmt: skip
    assert summary["rounds"] == 2 and 0.5 < summary["accuracy"] <= 1.0
    assert summary["epsilon"] > 0 and 0 < summary["delta"] < 1
    assert summary["bytes_per_update"] > 256 and summary["round_s_p50"] > 0
    assert "[round  2/2] accuracy" in proc.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
