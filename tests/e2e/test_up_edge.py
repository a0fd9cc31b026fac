"""`medkiosk up` with real kiosk agents on emulated devices: a card reader on a pseudo-terminal, a camera
looping synthetic face frames through the liveness model, and a kiosk UI sending symptoms to triage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.mark.timeout(300)
def test_real_agents_on_emulated_devices(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "medkiosk",
            "up",
            "--kiosk-mode",
            "edge",
            "--hospitals",
            "1",
            "--kiosks",
            "1",
            "--rate",
            "2",
            "--duration",
            "8",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["published"] > 0
    assert (summary["lost"], summary["duplicates"], summary["misrouted"], summary["rejected"]) == (0, 0, 0, 0)
    events = [json.loads(x) for x in (tmp_path / "up" / "out" / "H01.jsonl").read_text().splitlines()]
    schemas = {e["schema"] for e in events}
    assert schemas == {"schemas.v1.IdentityCheck", "schemas.v1.InferenceResult"}
    checks = [e["event"] for e in events if e["schema"] == "schemas.v1.IdentityCheck"]
    # The camera loops a live face, so after warm-up cards are matched with a live face inside the window.
    assert any(c.get("verdict") == "IDENTITY_VERDICT_VERIFIED" for c in checks), checks
    assert all(c["synthetic"] for c in checks)
    stats = json.loads((tmp_path / "up" / "stats" / "kiosk-H01-01.json").read_text())
    assert stats["outbox_depth"] == 0 and stats["camera_frames"] > 0
