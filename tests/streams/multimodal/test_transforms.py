"""The MONAI transforms on real DICOM from the packages (pydicom's CT_small.dcm, pydicom-data's 693_UNCR.dcm)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch

from cloud_workers.trainer import ct_sources
from streams.multimodal import build_transforms, load_manifest, load_tokenizer
from tests.streams.multimodal.helpers import TEST_ROI


@pytest.mark.parametrize("name", ["CT_small.dcm", "693_UNCR.dcm"])
def test_a_real_ct_slice_is_scaled_padded_and_cropped(name: str, tmp_path: Path) -> None:
    src = next((p for p in ct_sources() if p.name == name), None)
    if src is None:
        pytest.skip(f"{name} not installed (pydicom-data)")
    folder = tmp_path / "series"
    folder.mkdir()
    shutil.copy(src, folder / name)
    ds = pydicom.dcmread(src)
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    want = np.clip((hu + 1000.0) / 2000.0, 0.0, 1.0)

    roi = (64, 64, 4)  # the slice is 128 or 512 pixels wide: cropped in-plane, padded in depth
    out = build_transforms(roi, None, train=False)({"image": str(folder), "policy": [0.0], "label": 1})
    image = out["image"]
    assert isinstance(image, torch.Tensor) and image.shape == (1, *roi)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    h, w = hu.shape
    y0, x0 = (h - roi[0]) // 2, (w - roi[1]) // 2
    got = image[0, :, :, 1].numpy()  # depth 1 padded to 4: the real slice sits at index 1
    centre = want[y0 : y0 + roi[0], x0 : x0 + roi[1]]
    assert np.allclose(got, centre, atol=1e-5) or np.allclose(got, centre.T, atol=1e-5)
    assert float(image[0, :, :, 0].abs().max()) == 0.0  # padding
    assert out["label"].dtype == torch.int64 and out["policy"].dtype == torch.float32


def test_training_crops_are_seeded_and_evaluation_crops_fixed(synthetic_small: Path, tiny_bert: Path) -> None:
    case = load_manifest(synthetic_small)[0]
    tok = load_tokenizer(tiny_bert)

    def crops(seed: int, train: bool) -> list[torch.Tensor]:
        t = build_transforms(TEST_ROI, tok, train=train, max_tokens=48, seed=seed)
        return [t(case.sample())["image"] for _ in range(3)]

    a, b, c = crops(0, True), crops(0, True), crops(1, True)
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=0)
    assert any(not torch.equal(x, y) for x, y in zip(a, c, strict=True))
    e1, e2 = crops(0, False), crops(5, False)
    assert all(torch.equal(e1[0], e) for e in e1 + e2)
    assert a[0].shape == (1, *TEST_ROI)


def test_the_report_is_tokenised_in_the_same_sample(synthetic_small: Path, tiny_bert: Path) -> None:
    case = load_manifest(synthetic_small)[0]
    out = build_transforms(TEST_ROI, load_tokenizer(tiny_bert), train=False, max_tokens=48)(case.sample())
    ids, mask = out["input_ids"], out["attention_mask"]
    assert ids.shape == mask.shape == (48,) and ids.dtype == torch.int64
    n = int(mask.sum())
    assert 10 < n <= 48 and bool((ids[n:] == 0).all())
    assert out["report"] == case.report and out["case_id"] == case.case_id
