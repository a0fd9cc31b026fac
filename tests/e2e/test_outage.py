"""Broker outage drills at real lengths: stop the broker for 30 s and for 120 s while kiosks keep producing,
start it again: nothing lost, nothing duplicated at the subscribers. On each engine: Apache Kafka (its log
dir survives the restart) and Tansu with its durable (S3) store, as a real cluster keeps its log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.broker, pytest.mark.slow]


# Where the 83 records went (30 s outage, 2 hospitals x 2 kiosks, Tansu on its S3 store): after the
# restart Tansu logs `tansu_storage::service::produce ... AlreadyExists { path: ".../kiosk.identity.v1/
# partitions/0000000001/records/00000000000000000365.batch" }`: it places a new batch at an offset whose
# object already exists. From then on the broker serves none of the newer records: the gateway's fetches
# return nothing new (its event loop idle, no error), and a fresh reader seeking every partition to the
# beginning saw 640 records while the kiosks had 885 acknowledged (their outboxes empty). So the tail of each
# kiosk's stream is acknowledged and then lost by the broker. On Apache Kafka the same drills, the same code,
# deliver every record exactly once at 30 s and 120 s.
# Ruled out on our side (README, "Outage drills"): moto refuses stale conditional PUTs (412) as S3 does; the
# stop signal (scripts/tansu_s3_restart.py: no loss after SIGINT, SIGTERM or SIGKILL under concurrent
# producers; this drill with SIGTERM failed the same way); other engines (the shipped binary has dynostore
# only: postgres/sqlite/turso are FeatureNotEnabled). With SIGTERM the S3 log shows no collision but a fetch
# path that, after the restart, returns one batch every few seconds and stops at offset 60 of 412 stored.
TANSU_TAIL_LOSS = "Tansu 0.6 S3 store: after a broker restart a partition's fetches stall (broker bug)"


@pytest.fixture
def tansu_expected_to_fail(request: pytest.FixtureRequest, broker_engine: str) -> None:
    """Tansu's drills are expected to fail (see above). Applied at setup, where pytest reads xfail marks: the
    30 s drill still runs on Tansu (a fix shows as XPASS); the 120 s one does not (2.5 min for the same loss)."""
    if broker_engine == "tansu":
        run = "thirty" in request.node.name
        request.applymarker(pytest.mark.xfail(reason=TANSU_TAIL_LOSS, strict=False, run=run))


def drill(tmp_path: Path, engine: str, outage_s: int) -> None:
    start_at = 4
    argv = [
        sys.executable,
        "-m",
        "medkiosk",
        "up",
        "--engine",
        engine,
        "--broker-outage",
        f"{start_at}:{outage_s}",
        "--duration",
        str(start_at + outage_s + 8),
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
    ]
    if engine == "tansu":
        argv[4:4] = ["--storage", "s3"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=outage_s + 240, check=False)
    assert "chaos: broker is back" in proc.stderr, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["published"] > 0
    assert (summary["lost"], summary["duplicates"], summary["misrouted"]) == (0, 0, 0), proc.stderr[-4000:]
    assert summary["delivered"] == summary["published"]
    assert proc.returncode == 0
    # Events were produced while the broker was down and waited in the kiosks' outboxes.
    stats = [json.loads(p.read_text()) for p in (tmp_path / "up" / "stats").glob("kiosk-*.json")]
    assert stats and all(s["outbox_depth"] == 0 for s in stats)
    assert all(s["outbox_depth_max"] >= outage_s for s in stats), stats


@pytest.mark.timeout(330)
def test_thirty_second_outage_loses_nothing(tmp_path: Path, broker_engine: str, tansu_expected_to_fail: None) -> None:
    drill(tmp_path, broker_engine, 30)


@pytest.mark.timeout(450)
def test_two_minute_outage_loses_nothing(tmp_path: Path, broker_engine: str, tansu_expected_to_fail: None) -> None:
    drill(tmp_path, broker_engine, 120)
