"""No decrypted field in any log of a demo run: ``medkiosk up`` (real processes: broker, gateway, subscribers,
kiosks), then every value the subscribers decrypted is looked for in every process log and in up's own output.

Device emulators are not roles: a card reader's ground truth is the card number itself, so this run uses the
simulated kiosks (no emulators). The edge agents' own logs are covered by the per-image Jetson test's agent run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _leaves(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [v for value in obj.values() for v in _leaves(value)]
    if isinstance(obj, list):
        return [v for value in obj for v in _leaves(value)]
    return [] if isinstance(obj, bool) else [str(obj)]


def test_demo_run_logs_carry_no_decrypted_value(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDKIOSK_")}
    env["MEDKIOSK_LOG_LEVEL"] = "INFO"  # the most a process logs
    demo = [sys.executable, "-m", "medkiosk", "up", "--hospitals", "1", "--kiosks", "1", "--rate", "10"]
    proc = subprocess.run(
        [*demo, "--duration", "3", "--kiosk-mode", "simulated", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = state / "up"
    events = [
        json.loads(line) for path in sorted((run / "out").glob("*.jsonl")) for line in path.read_text().splitlines()
    ]
    assert len(events) >= 10, "the demo delivered events"
    ids = {e["hospital_id"] for e in events} | {e["producer_id"] for e in events}
    private = {v for e in events for v in _leaves(e["event"]) if len(v) >= 4} - ids - {"true", "True"}
    card_numbers = {e["event"]["card"]["card_number"] for e in events if "card" in e["event"]}
    assert card_numbers and card_numbers <= private
    logs = {path.name: path.read_text(errors="replace") for path in sorted((run / "logs").glob("*.log"))}
    assert {"gateway-1.log"} <= set(logs) and any(name.startswith("subscriber") for name in logs)
    logs["medkiosk up (stdout+stderr)"] = proc.stdout + proc.stderr
    leaked = {name: sorted(v for v in private if v in text)[:5] for name, text in logs.items()}
    assert not {name: found for name, found in leaked.items() if found}, f"decrypted values in logs: {leaked}"
