"""The whole system under broker-side isolation: ``medkiosk up --engine kafka --secured`` gives every role its
own SCRAM principal and applies the generated ACLs first; everything is still delivered exactly once, to the
right hospital only, and no role hits an authorization error on its own paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.mark.timeout(300)
def test_up_secured_delivers_everything(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--broker-engine") == "tansu":
        pytest.skip("--broker-engine tansu: secured mode needs Apache Kafka")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "medkiosk",
            "up",
            "--engine",
            "kafka",
            "--secured",
            "--duration",
            "20",
            "--hospitals",
            "2",
            "--kiosks",
            "2",
            "--rate",
            "5",
            "--kiosk-mode",
            "simulated",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert "acls: " in proc.stderr and "SASL/SCRAM-SHA-512" in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["published"] > 0
    assert (summary["lost"], summary["duplicates"], summary["misrouted"], summary["rejected"]) == (0, 0, 0, 0)
    assert proc.returncode == 0
    # Roles used only what the plan allows them: the one refusal logged is the subscribers' optional attempt
    # to create their own topic (they have no CREATE right; the topics exist).
    for log in (tmp_path / "up" / "logs").glob("*.log"):
        for line in log.read_text(errors="replace").splitlines():
            if "AuthorizationFailed" in line:
                assert "Failed to create topic" in line, f"{log.name}: {line}"
