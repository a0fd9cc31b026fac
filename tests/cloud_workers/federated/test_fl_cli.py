"""``medkiosk fl ...``: every command has help; ``fl run`` trains end to end on its own embedded broker, every
role its own process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from medkiosk.__main__ import build_parser

COMMANDS = [
    ["fl"], ["fl", "run"], ["fl", "coordinator"], ["fl", "aggregator"], ["fl", "keyholder"], ["fl", "client"],
    ["fl", "privacy-report"],
]  # fmt: skip


def test_fl_run_refuses_a_single_hospital(tmp_path: Path) -> None:
    """A one-hospital 'federation' would decrypt that hospital's update alone: refused before anything starts."""
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", "fl", "run", "--hospitals", "1", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode != 0 and "at least 2 hospitals" in proc.stderr


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
    argv = [sys.executable, "-m", "medkiosk", "fl", "run", "--hospitals", "3", "--rounds", "2", "--key-bits", "1024",
            "--state-dir", str(tmp_path), "--plot", str(plot)]  # fmt: skip
    popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = popen.communicate(timeout=170)
    finally:
        if popen.poll() is None:  # a timeout: stop fl run and every role it started (its own session)
            os.killpg(popen.pid, signal.SIGTERM)
            popen.communicate(timeout=30)
    proc = subprocess.CompletedProcess(argv, popen.returncode, out, err)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary) == {
        "rounds", "accuracy", "centralized_accuracy", "epsilon", "delta", "bytes_per_update", "round_s_p50",
    }  # fmt: skip
    assert summary["rounds"] == 2 and 0.5 < summary["accuracy"] <= 1.0
    assert 0 < summary["epsilon"] <= 8.0 and 0 < summary["delta"] < 1  # the coordinator's own accounting
    assert summary["bytes_per_update"] > 256 and summary["round_s_p50"] > 0
    assert "[round  2/2] accuracy" in proc.stderr
    assert "statistics round: " in proc.stderr  # the default: the federation's standardiser from secure sums
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
