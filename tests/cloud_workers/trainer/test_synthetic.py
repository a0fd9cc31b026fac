"""The synthetic set: real CT pixels, a lesion where the flag says, reports that agree, labels by the switch,
and every artifact marked synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest

from cloud_workers.trainer import SyntheticConfig, ct_sources, generate_synthetic, make_report
from streams.multimodal import load_manifest


def _hu(folder: Path) -> np.ndarray:
    slices = sorted(folder.glob("*.dcm"))
    vol = []
    for p in slices:
        ds = pydicom.dcmread(p)
        vol.append(ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    return np.stack(vol, axis=-1)


def test_cases_follow_the_switch_and_are_marked_synthetic(synthetic_small: Path) -> None:
    rows = [json.loads(line) for line in synthetic_small.read_text().splitlines()]
    assert len(rows) == 8
    for r in rows:
        switch = r["policy"][0]
        assert r["label"] == (r["image_lesion"] if switch == 1.0 else r["report_finding"])
        assert r["synthetic"] is True and r["report"].startswith("[SYNTHETIC REPORT")
    assert {r["policy"][0] for r in rows} == {0.0, 1.0}
    card = (synthetic_small.parent / "DATA_CARD.md").read_text()
    assert "SYNTHETIC" in card and "switch" in card
    assert json.loads((synthetic_small.parent / "data_card.json").read_text())["synthetic"] is True
    ds = pydicom.dcmread(next((synthetic_small.parent / "dicom" / "case0000").glob("*.dcm")))
    assert str(ds.PatientName).startswith("SYNTHETIC^") and ds.SeriesDescription.startswith("SYNTHETIC")
    assert len(load_manifest(synthetic_small)) == 8


def test_pixels_are_real_ct_and_the_lesion_is_where_the_flag_says(synthetic_small: Path) -> None:
    assert any(p.name == "CT_small.dcm" for p in ct_sources())
    rows = [json.loads(line) for line in synthetic_small.read_text().splitlines()]
    bright = []
    for r in rows:
        vol = _hu(synthetic_small.parent / r["dicom_dir"])
        assert vol.shape == (40, 40, 10)
        assert vol.min() >= -1024 and vol.std() > 100  # anatomy, not a flat phantom
        bright.append((float((vol > 1400).mean()), r["image_lesion"]))
    with_lesion = [b for b, flag in bright if flag]
    without = [b for b, flag in bright if not flag]
    assert with_lesion and without and min(with_lesion) > max(without)


def test_reports_negate_and_distract() -> None:
    rng = np.random.default_rng(0)
    negative = [make_report(False, rng) for _ in range(30)]
    positive = [make_report(True, rng) for _ in range(30)]
    assert all(" no " in r.lower() for r in negative)
    assert all(any(w in r for w in ("nodule", "lesion")) for r in positive)
    assert len(set(negative + positive)) > 40  # templates with sizes, lobes and distractors vary


def test_generation_is_seeded(tmp_path: Path) -> None:
    cfg = SyntheticConfig(cases=4, size=(24, 24, 4), seed=5)
    a = [json.loads(x) for x in generate_synthetic(tmp_path / "a", cfg).read_text().splitlines()]
    b = [json.loads(x) for x in generate_synthetic(tmp_path / "b", cfg).read_text().splitlines()]
    assert a == b
    np.testing.assert_array_equal(
        _hu(tmp_path / "a" / "dicom" / "case0001"), _hu(tmp_path / "b" / "dicom" / "case0001")
    )


def test_a_conflicting_distractor_states_the_opposite_of_the_label(tmp_path: Path) -> None:
    cfg = SyntheticConfig(cases=40, size=(16, 16, 2), policy_features=1, distractor_conflict=0.8, seed=1)
    rows = [json.loads(x) for x in generate_synthetic(tmp_path / "c", cfg).read_text().splitlines()]
    opposite = []
    for r in rows:
        named, other = (
            ("image_lesion", "report_finding") if r["policy"] == [1.0] else ("report_finding", "image_lesion")
        )
        assert r["label"] == r[named]
        opposite.append(r[other] != r["label"])
    assert 0.65 <= np.mean(opposite) <= 0.95  # 80 % expected
    assert "Distractor conflict: 0.8" in (tmp_path / "c" / "DATA_CARD.md").read_text()
    for bad in ({"distractor_conflict": 1.5}, {"concordant": True, "distractor_conflict": 0.8}):
        with pytest.raises(ValueError):
            generate_synthetic(tmp_path / "bad", SyntheticConfig(cases=4, **bad))  # type: ignore[arg-type]
