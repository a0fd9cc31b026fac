"""The audit report as a person sees it: ``medkiosk audit replay --report`` on the real broker, the page
loaded in headless Chromium (the DOM after rendering, and a screenshot kept in the test's directory)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer

from schemas import IdentityCheck, MedicalRecord
from streams import BusSettings, ChainState, Keyring, TopicSpec, apply_topics, seal

pytestmark = pytest.mark.broker

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
HOSTILE = '<img src=x onerror="document.title=1">'


class _Dom(HTMLParser):
    """Text per element id, the stream rows and every tag seen, from Chromium's serialised DOM."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[dict[str, str]] = []
        self.text: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self._row: dict[str, str] | None = None
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "tr" and "data-producer" in a:
            self._row = {
                "producer": a["data-producer"] or "",
                "stream": a.get("data-stream") or "",
                "class": a.get("class") or "",
            }
            self.rows.append(self._row)
        if tag == "td" and self._row is not None:
            self._cell = ((a.get("class") or "").split() or [""])[-1] or None
        self._open.append((tag, a.get("id")))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break
        if tag == "tr":
            self._row = None
        if tag == "td":
            self._cell = None

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident:
                self.text[ident] = self.text.get(ident, "") + data
        if self._row is not None and self._cell:
            self._row[self._cell] = self._row.get(self._cell, "") + data


def _sealed(keyring: Keyring, kiosk: str, stream: str, n: int) -> list[MedicalRecord]:
    out, state = [], ChainState()
    for i in range(n):
        rec, state = seal(
            IdentityCheck(kiosk_id=kiosk, hospital_id="H1", skew_ns=i),
            signing_key=keyring.signing_key(kiosk),
            chain=state,
            hospital_id="H1",
            data_key=keyring.latest_data_key("H1"),
            stream=stream,
        )
        out.append(rec)
    return out


async def _publish(settings: BusSettings, topic: str, values: list[bytes]) -> None:
    await apply_topics(settings, [TopicSpec(name=topic, key="k", content="t", partitions=1)])
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=b"k")
    finally:
        await producer.stop()


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (scripts/setup.sh installs it)")
def test_report_in_a_browser(keyring: Keyring, settings: BusSettings, keys_dir: Path, tmp_path: Path) -> None:
    topic = f"test.audit.report.{uuid.uuid4().hex[:8]}"
    k1 = _sealed(keyring, "k1", topic, 10)
    k3 = _sealed(keyring, "k3", topic, 5)
    forged = MedicalRecord()
    forged.CopyFrom(k1[6])
    forged.encrypted_data = forged.encrypted_data[:-1] + bytes([forged.encrypted_data[-1] ^ 1])
    stranger = MedicalRecord()
    stranger.CopyFrom(k3[0])
    stranger.producer_id = HOSTILE  # unknown producer, shown (escaped) in the page
    values = [r.SerializeToString() for r in k1[:6]]
    values += [forged.SerializeToString(), *(r.SerializeToString() for r in k1[7:])]
    values += [k3[0].SerializeToString(), k3[1].SerializeToString()]  # k3's seq 3 never reached the log
    values += [k3[3].SerializeToString(), k3[4].SerializeToString(), stranger.SerializeToString()]
    asyncio.run(_publish(settings, topic, values))

    page = tmp_path / "report.html"
    argv = ["audit", "replay", "--topic", topic, "--report", str(page)]
    argv += ["--bootstrap", settings.bootstrap_servers, "--keys-dir", str(keys_dir)]
    proc = subprocess.run(
        [sys.executable, "-m", "medkiosk", *argv], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 1, proc.stderr[-3000:]  # something is bad: the command says so
    printed = json.loads(proc.stdout.strip().splitlines()[-1])
    beside = json.loads(page.with_suffix(".json").read_text())
    assert {k: v for k, v in beside.items() if k != "bad_records"} == printed
    assert (printed["records"], printed["first_bad"]["offset"], printed["first_bad"]["reason"]) == (
        15,
        6,
        "bad_signature",
    )
    assert "http" not in page.read_text().replace("http-equiv", "")  # self-contained: nothing to fetch

    assert CHROMIUM is not None
    profile = tmp_path / "chromium-profile"
    base = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"]
    dom = subprocess.run(
        [*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90, check=True
    ).stdout
    shot = tmp_path / "report.png"
    subprocess.run([*base, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=90, check=True)
    artifacts = os.environ.get("MEDKIOSK_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / "audit-report.png")

    parsed = _Dom()
    parsed.feed(dom)
    assert parsed.text["topic"] == topic
    assert parsed.text["verdict"] == "Tampering or loss detected"
    assert parsed.text["records"] == "15"
    assert int(parsed.text["bad-count"]) == printed["bad"]
    assert "partition 0, offset 6" in parsed.text["first-bad"] and "bad_signature" in parsed.text["first-bad"]
    rows = {r["producer"]: r for r in parsed.rows}
    assert set(rows) == {"k1", "k3", HOSTILE}
    k1_row, k3_row = rows["k1"], rows["k3"]
    assert "chain-broken" in k1_row["class"] and k1_row["chain"] == "BROKEN"
    assert (k1_row["first-seq"], k1_row["last-seq"]) == ("1", "6")
    assert "offset 6" in k1_row["first-bad-cell"] and "bad_signature" in k1_row["first-bad-cell"]
    assert k1_row["gaps"] == "seq 7 (1 missing)"  # the forged seq 7 has no authentic envelope
    assert k3_row["gaps"] == "seq 3 (1 missing)" and "seq_gap" in k3_row["first-bad-cell"]
    assert "unknown_producer" in rows[HOSTILE]["first-bad-cell"]
    # The hostile producer id is text on the page, never markup: no image element exists, the title is intact.
    assert "img" not in parsed.tags and "script" not in parsed.tags
    assert parsed.text.get("topic") == topic

    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1400, 1000)
        px = np.asarray(image.convert("RGB")).astype(int)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    red = int(((r > 180) & (g < 70) & (b < 70)).sum())
    green = int(((r < 80) & (g > 100) & (b < 80)).sum())
    assert red > 500  # the verdict banner and the broken chains' marks are on screen
    assert green > 20  # the verified part of the timelines too
