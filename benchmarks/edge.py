"""Kiosk pipeline latency per stage, capture to outbox, on a real agent with emulated devices.

Runs ``medkiosk up --kiosk-mode edge`` (1 hospital, 1 kiosk: card reader on a pseudo-terminal, camera
looping synthetic face frames, UI sending symptoms) and reports the agent's stage percentiles, plus which
inference engines this machine can run. Prints one JSON line. Liveness-per-face and triage throughput have
their own benchmarks (``edge_liveness.py``, ``edge_triage.py``).

    .venv/bin/python benchmarks/edge.py [--duration 30] [--rate 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--rate", type=float, default=2.0, help="card taps per second")
    args = ap.parse_args()
    state = Path(tempfile.mkdtemp())
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
            str(args.rate),
            "--duration",
            str(args.duration),
            "--state-dir",
            str(state),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"medkiosk up failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    stats = json.loads((state / "up" / "stats" / "kiosk-H01-01.json").read_text())
    from edge_agent.inference import available_engines

    print(
        json.dumps(
            {
                "benchmark": "edge",
                "duration_s": args.duration,
                "card_rate_hz": args.rate,
                "camera_fps": 10,
                "cards": stats["cards"],
                "identity_checks": stats["identity_checks"],
                "inferences": stats["inferences"],
                "camera_frames": stats["camera_frames"],
                "stages_ms": stats["stages_ms"],
                "kiosk_to_hospital_e2e_p50_ms": summary["e2e_p50_ms"],
                "kiosk_to_hospital_e2e_p99_ms": summary["e2e_p99_ms"],
                "lost": summary["lost"],
                "engines": {k: (v or "available") for k, v in available_engines().items()},
                "cores": os.cpu_count(),
                "synthetic": True,
            }
        )
    )


if __name__ == "__main__":
    main()
