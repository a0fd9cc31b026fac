"""The committed AsyncAPI page in headless Chromium, offline: the vendored AsyncAPI viewer parses the document with
the official AsyncAPI parser (which validates it against the 3.0 schema) and renders every operation; a broken
document shows the parser's errors instead (so this test would catch one)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from cloud_workers._asyncapi import VIEWER, render_html

DOCS = Path(__file__).resolve().parents[2] / "docs" / "asyncapi"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PARSER_ERROR = "There are errors in your Asyncapi document"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (scripts/setup.sh installs it)")


def _render(page: Path, profile: Path, *extra: str) -> str:
    assert CHROMIUM is not None
    argv = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=20000", *extra, page.as_uri()]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=True).stdout


def test_page_renders_every_operation_offline(tmp_path: Path) -> None:
    dom = _render(DOCS / "index.html", tmp_path / "profile", "--dump-dom")
    assert PARSER_ERROR not in dom
    for op in (
        "operation-receive-hospital.{hospital_id}.events.v1",
        "operation-receive-audit.v1",
        "operation-receive-dlq.v1",
    ):
        assert f'id="{op}"' in dom, op
    assert 'id="server-Server1-security"' in dom
    shot = tmp_path / "asyncapi.png"
    _render(DOCS / "index.html", tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,1000")
    assert shot.stat().st_size > 10_000


def test_a_broken_document_shows_the_parser_errors(tmp_path: Path) -> None:
    doc = json.loads((DOCS / "asyncapi.json").read_text())
    doc["channels"]["audit.v1"]["address"] = 5  # AsyncAPI 3.0: a string or null
    page = tmp_path / "index.html"
    page.write_text(render_html(doc))
    shutil.copytree(DOCS / VIEWER, tmp_path / VIEWER)
    dom = _render(page, tmp_path / "profile", "--dump-dom")
    assert PARSER_ERROR in dom and '"address" property type must be string' in dom
