"""Manifest validation: a hospital's CSV/JSONL is accepted as written, and every mistake is named with its line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from streams.multimodal import ManifestError, load_manifest


def _rows(manifest: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in manifest.read_text().splitlines()]


def _write(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_synthetic_manifest_is_valid(synthetic_small: Path) -> None:
    cases = load_manifest(synthetic_small, policy_features=8)
    assert len(cases) == 8
    assert all(c.dicom_dir.is_dir() and len(c.policy) == 8 and c.label in (0, 1) for c in cases)
    assert cases[0].extra["synthetic"] is True
    sample = cases[0].sample()
    assert set(sample) == {"case_id", "image", "report", "policy", "label"}


def test_csv_manifest_with_absolute_dirs_and_semicolon_policy(synthetic_small: Path, tmp_path: Path) -> None:
    rows = _rows(synthetic_small)[:3]
    lines = ["case_id,dicom_dir,report,policy,label"]
    for r in rows:
        folder = synthetic_small.parent / str(r["dicom_dir"])
        policy = ";".join(str(v) for v in r["policy"])  # type: ignore[attr-defined]
        report = str(r["report"]).replace('"', "'")
        lines.append(f'{r["case_id"]},{folder},"{report}",{policy},{r["label"]}')
    path = tmp_path / "cases.csv"
    path.write_text("\n".join(lines) + "\n")
    cases = load_manifest(path)
    assert [c.case_id for c in cases] == [r["case_id"] for r in rows]
    assert cases[0].policy == tuple(rows[0]["policy"])  # type: ignore[arg-type]


def test_csv_with_a_wrong_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("case_id,dicom_folder,report,policy,label\nc1,x,y,1,0\n")
    with pytest.raises(ManifestError, match=r"missing column\(s\) \['dicom_dir'\]"):
        load_manifest(path)


def test_every_problem_is_reported_with_its_line(synthetic_small: Path, tmp_path: Path) -> None:
    base = tmp_path / "m"
    base.mkdir()
    good = _rows(synthetic_small)
    src = synthetic_small.parent / "dicom"
    shutil.copytree(src, base / "dicom")
    (base / "dicom" / "empty").mkdir()
    broken = base / "dicom" / "broken"
    broken.mkdir()
    (broken / "slice_000.dcm").write_bytes(b"this is not DICOM at all" * 10)
    rows: list[dict[str, object]] = [
        good[0],  # line 1 fine
        {**good[1], "dicom_dir": "dicom/does-not-exist"},  # 2 missing series
        {**good[2], "dicom_dir": "dicom/empty"},  # 3 empty folder
        {**good[3], "dicom_dir": "dicom/broken"},  # 4 unreadable DICOM
        {**good[4], "policy": [1.0, 2.0]},  # 5 wrong number of policy features
        {**good[5], "label": 1.5},  # 6 non-integer label
        {**good[6], "label": 7},  # 7 label out of range
        {k: v for k, v in good[7].items() if k != "report"},  # 8 missing column
        {**good[0]},  # 9 duplicate case id
        {**good[1], "case_id": "x", "policy": [float("nan")] * 8},  # 10 NaN policy
    ]
    path = _write(base / "manifest.jsonl", rows)
    with path.open("a") as fh:
        fh.write("{not json\n")  # 11
        fh.write("[1, 2]\n")  # 12
    with pytest.raises(ManifestError) as info:
        load_manifest(path, policy_features=8)
    problems = info.value.problems
    text = "\n".join(problems)
    assert len(problems) == 11, text
    for n, needle in [
        (2, "does not exist"),
        (3, "empty (missing series)"),
        (4, "unreadable DICOM slice_000.dcm"),
        (5, "policy has 2 features"),
        (6, "label must be an integer"),
        (7, "label must be in [0, 2)"),
        (8, "missing column(s) ['report']"),
        (9, "duplicate case_id"),
        (10, "non-finite"),
        (11, "not JSON"),
        (12, "expected a JSON object"),
    ]:
        assert any(p.startswith(f"line {n}") and needle in p for p in problems), (n, needle, text)


def test_missing_and_empty_manifests(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifest(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ManifestError, match="no cases"):
        load_manifest(tmp_path / "empty.jsonl")
