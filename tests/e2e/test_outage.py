"""Broker outage: stop the broker for 10 s while kiosks keep producing, start it again: nothing lost,
nothing duplicated at the subscribers. Uses the durable (S3-backed) embedded broker, as a real
Kafka cluster keeps its log across a restart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]


@pytest.mark.timeout(300)
def test_ten_second_outage_loses_nothing(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "medkiosk",
            "up",
            "--storage",
            "s3",
            "--broker-outage",
            "3:10",
            "--duration",
            "16",
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
    assert "chaos: broker is back" in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["published"] > 0
    assert (summary["lost"], summary["duplicates"], summary["misrouted"]) == (0, 0, 0), proc.stderr
    assert summary["delivered"] == summary["published"]
    assert proc.returncode == 0
    # Events were produced while the broker was down and waited in the kiosks' outboxes.
    stats = [json.loads(p.read_text()) for p in (tmp_path / "up" / "stats").glob("kiosk-*.json")]
    assert stats and all(s["outbox_depth"] == 0 for s in stats)
    assert all(s["outbox_depth_max"] >= 10 for s in stats), stats
