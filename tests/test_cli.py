"""The CLI: every command has help, and bad arguments fail clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from medkiosk.__main__ import build_parser

COMMANDS = [
    [],
    ["up"],
    ["broker"],
    ["broker", "start"],
    ["topics", "apply"],
    ["keys", "init"],
    ["keys", "export"],
    ["kiosk", "simulate"],
    ["gateway"],
    ["subscribe"],
    ["audit", "replay"],
    ["audit", "follow"],
    ["control", "scale"],
    ["autoscaler"],
    ["autoscaler", "train"],
    ["edge"],
    ["emulate", "rfid"],
    ["emulate", "patients"],
    ["fl", "run"],
    ["fl", "coordinator"],
    ["fl", "aggregator"],
    ["fl", "keyholder"],
    ["fl", "client"],
    ["fl", "keys", "init"],
    ["fl", "keys", "export"],
]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda a: " ".join(a) or "medkiosk")
def test_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*argv, "--help"])
    assert info.value.code == 0
    assert "usage: medkiosk" in capsys.readouterr().out


def test_console_entry_point_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "medkiosk", "--version"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("medkiosk ")


def test_bad_outage_spec_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--broker-outage", "soon"])
    assert "expected AT:FOR" in capsys.readouterr().err


def test_service_without_keys_says_what_to_do(tmp_path: object) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", "gateway", "--keys-dir", f"{tmp_path}/none"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "medkiosk keys init" in proc.stderr
