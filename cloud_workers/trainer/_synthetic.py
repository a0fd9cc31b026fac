"""A SYNTHETIC paired CT + report + policy data set built from the real CT slices that PyPI packages ship.

No real paired CT and report data is available offline, so every case is made here, and marked synthetic
everywhere (DICOM ``SeriesDescription`` and ``PatientName``, the report's first line, the manifest's
``synthetic`` column, the data card). Pixels are real: each volume stacks one real CT slice (``CT_small.dcm``
from pydicom, ``693_UNCR.dcm``/``693_UNCI.dcm`` from pydicom-data), resampled in-plane, with small per-slice
shifts and noise. A lesion (a sphere of +``lesion_hu`` HU) is injected with a known flag; a template report
states a finding (with negations and distractor sentences) with its own flag. Policy feature 0 is the
*switch*: when it is 1 the label is the image's lesion flag, when 0 the report's finding flag, so only a
model that reads the switch (the gate) can reach high accuracy; the other policy features are noise. The other
modality is independent of the label by default, or a conflicting distractor (``distractor_conflict``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["SyntheticConfig", "ct_sources", "generate_synthetic", "make_report"]

_LOBES = ("right upper lobe", "right lower lobe", "left upper lobe", "left lower lobe", "middle lobe")
_POSITIVE = (
    "There is a {size} mm hyperdense nodule in the {lobe}.",
    "A {size} mm rounded lesion is seen in the {lobe}, suspicious for a mass.",
    "New {size} mm nodule in the {lobe}; follow-up is recommended.",
)
_NEGATIVE = (
    "No nodule or mass is identified.",
    "There is no evidence of a focal lesion in the {lobe}.",
    "The previously described nodule in the {lobe} is no longer seen; no new lesion.",
)
_DISTRACTORS = (
    "No pleural effusion.",
    "Small left pleural effusion.",
    "Mild degenerative changes of the thoracic spine.",
    "Heart size is normal.",
    "No pneumothorax.",
    "Calcified granuloma, unchanged, not a nodule of concern.",
)
SYNTHETIC_LINE = "[SYNTHETIC REPORT - generated, not a real patient]"


@dataclass(frozen=True, kw_only=True)
class SyntheticConfig:
    """How many cases, their size and how strong the signal is."""

    cases: int = 48
    #: Volume size (H, W, D) in voxels.
    size: tuple[int, int, int] = (48, 48, 12)
    policy_features: int = 8
    #: HU added inside the lesion sphere, and its radius as a fraction of min(H, W).
    lesion_hu: float = 1500.0
    lesion_radius: float = 0.28
    noise_hu: float = 15.0
    #: The report states what the image shows (both modalities carry the label; the switch has no effect).
    concordant: bool = False
    #: Probability that the modality the switch does NOT name states the opposite of the label (else it states
    #: the label). 0.5 (the default): independent of the label. Above 0.5 it is a *conflicting distractor*: a
    #: head reading both modalities the same way in every case is misled, so it must read the switch (the
    #: gating ablation's set uses 0.8). 1.0 would make the label the XOR of switch and either modality.
    distractor_conflict: float = 0.5
    seed: int = 0


def ct_sources() -> list[Path]:
    """The real CT slices shipped by pydicom (always) and pydicom-data (when installed)."""
    import importlib.util

    from pydicom.data import get_testdata_file

    found = [Path(str(get_testdata_file("CT_small.dcm")))]
    spec = importlib.util.find_spec("data_store")  # pydicom-data's package
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / "data"
        found += [root / name for name in ("693_UNCR.dcm", "693_UNCI.dcm") if (root / name).is_file()]
    return found


def _hu(path: Path) -> NDArray[np.float32]:
    import pydicom

    ds = pydicom.dcmread(path)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    return (ds.pixel_array.astype(np.float32) * slope + intercept).clip(-1024, 3071)


def _resize(img: NDArray[np.float32], h: int, w: int) -> NDArray[np.float32]:
    import torch

    t = torch.from_numpy(img)[None, None]
    out = torch.nn.functional.interpolate(t, size=(h, w), mode="area" if img.shape[0] >= h else "bilinear")
    return out[0, 0].numpy().astype(np.float32)


def make_report(finding: bool, rng: np.random.Generator) -> str:
    """A template report stating (or negating) a nodule, with one or two distractor sentences."""
    lobe = _LOBES[int(rng.integers(len(_LOBES)))]
    size = int(rng.integers(6, 30))
    pool = _POSITIVE if finding else _NEGATIVE
    main = pool[int(rng.integers(len(pool)))].format(lobe=lobe, size=size)
    picks = rng.choice(len(_DISTRACTORS), size=int(rng.integers(1, 3)), replace=False)
    sentences = [main, *(_DISTRACTORS[int(i)] for i in picks)]
    order = rng.permutation(len(sentences))
    return SYNTHETIC_LINE + " " + " ".join(sentences[int(i)] for i in order)


def _volume(
    base: NDArray[np.float32], cfg: SyntheticConfig, lesion: bool, rng: np.random.Generator
) -> NDArray[np.float32]:
    h, w, d = cfg.size
    plane = _resize(base, h, w)
    slices = []
    for _ in range(d):
        dy, dx = (int(v) for v in rng.integers(-2, 3, size=2))
        slices.append(np.roll(plane, (dy, dx), axis=(0, 1)) + rng.normal(0, cfg.noise_hu, size=(h, w)))
    vol = np.stack(slices, axis=-1).astype(np.float32)
    if lesion:
        r = max(1.5, cfg.lesion_radius * min(h, w))
        rz = max(1.0, r * d / min(h, w))
        cy, cx = (float(rng.uniform(r, s - r)) for s in (h, w))
        cz = float(rng.uniform(min(rz, d / 2), max(d - rz, d / 2)))
        yy, xx, zz = np.meshgrid(np.arange(h), np.arange(w), np.arange(d), indexing="ij")
        inside = ((yy - cy) / r) ** 2 + ((xx - cx) / r) ** 2 + ((zz - cz) / rz) ** 2 <= 1.0
        vol[inside] += cfg.lesion_hu
    return vol.clip(-1024, 3071)


def _write_series(vol: NDArray[np.float32], folder: Path, case_id: str, template: Path, source: str) -> None:
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    h, w, d = vol.shape
    ds = pydicom.dcmread(template)
    # The source scanner's ~190 private (vendor) elements mean nothing for a phantom, and writing and reading them
    # was most of the cost of a synthetic set.
    ds.remove_private_tags()
    if "DataSetTrailingPadding" in ds:
        del ds.DataSetTrailingPadding
    for k in range(d):  # one dataset, every per-slice element set anew before each write
        sop = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = sop, study, series
        ds.PatientName, ds.PatientID = f"SYNTHETIC^{case_id}", f"SYN-{case_id}"
        ds.SeriesDescription = f"SYNTHETIC phantom from {source}"[:64]
        ds.InstanceNumber = k + 1
        ds.Rows, ds.Columns = h, w
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.SliceThickness = 5.0
        ds.ImagePositionPatient = [0.0, 0.0, 5.0 * k]
        ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        ds.SliceLocation = 5.0 * k
        stored = np.round(vol[:, :, k] + 1024.0).astype(np.int16)
        ds.PixelData = stored.tobytes()
        ds.save_as(folder / f"slice_{k:03d}.dcm", enforce_file_format=True)


def generate_synthetic(out: Path, config: SyntheticConfig | None = None) -> Path:
    """Write ``out/dicom/<case>/`` series, ``out/manifest.jsonl`` and ``out/DATA_CARD.md``; return the manifest."""
    cfg = config or SyntheticConfig()
    if cfg.cases < 2 or cfg.policy_features < 1:
        raise ValueError("need at least 2 cases and 1 policy feature")
    if not 0.0 <= cfg.distractor_conflict <= 1.0:
        raise ValueError(f"distractor_conflict must be in [0, 1], got {cfg.distractor_conflict}")
    if cfg.concordant and cfg.distractor_conflict != 0.5:
        raise ValueError("a concordant set has no distractor: leave distractor_conflict at 0.5")
    # Its own stream, so the default sets (0.5) stay what they were before the option existed.
    conflict = np.random.default_rng([cfg.seed, 0xC0F1]).random(cfg.cases) < cfg.distractor_conflict
    rng = np.random.default_rng(cfg.seed)
    sources = ct_sources()
    bases = [_hu(p) for p in sources]
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for i in range(cfg.cases):
        case_id = f"case{i:04d}"
        switch = int(i % 2)  # balanced: half the cases carry the label in the image
        lesion, finding = bool(rng.integers(2)), bool(rng.integers(2))
        finding = lesion if cfg.concordant else finding
        if cfg.distractor_conflict != 0.5:  # the modality the switch does not name: opposite w.p. the conflict
            if switch:
                finding = lesion != bool(conflict[i])
            else:
                lesion = finding != bool(conflict[i])
        label = int(lesion if switch else finding)
        src = int(rng.integers(len(bases)))
        vol = _volume(bases[src], cfg, lesion, rng)
        _write_series(vol, out / "dicom" / case_id, case_id, sources[0], sources[src].name)
        policy = [float(switch), *(float(v) for v in rng.normal(size=cfg.policy_features - 1).round(4))]
        rows.append(
            {
                "case_id": case_id,
                "dicom_dir": f"dicom/{case_id}",
                "report": make_report(finding, rng),
                "policy": policy,
                "label": label,
                "synthetic": True,
                "image_lesion": int(lesion),
                "report_finding": int(finding),
            }
        )
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _write_card(out, cfg, sources, rows)
    return manifest


def _write_card(out: Path, cfg: SyntheticConfig, sources: list[Path], rows: list[dict[str, Any]]) -> None:
    pos = sum(r["label"] for r in rows)
    card = {
        "synthetic": True,
        "config": {**asdict(cfg), "size": list(cfg.size)},
        "sources": [p.name for p in sources],
        "cases": len(rows),
        "positive_labels": pos,
    }
    (out / "data_card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "DATA_CARD.md").write_text(
        f"""# Data card: SYNTHETIC multimodal CT + report set

**Every case is synthetic.** Do not use for any clinical purpose.

- Cases: {len(rows)} ({pos} with label 1), volumes {cfg.size[0]}x{cfg.size[1]}x{cfg.size[2]} voxels, seed {cfg.seed}.
- Pixels: real CT slices shipped with PyPI packages ({", ".join(p.name for p in sources)}; pydicom and
  pydicom-data test files), resampled in-plane and stacked with per-slice shifts of up to 2 voxels and Gaussian
  noise of {cfg.noise_hu} HU. They are not volumes of a real patient.
- Lesion: a sphere (radius {cfg.lesion_radius} x min(H, W)) of +{cfg.lesion_hu} HU at a random position in half
  of the volumes (`image_lesion`).
- Reports: templates stating or negating a nodule (`report_finding`), with distractor sentences (effusion, spine,
  granuloma "not a nodule"), first line `{SYNTHETIC_LINE}`.
- Policy features: feature 0 is the switch (1: the label is `image_lesion`; 0: the label is `report_finding`);
  the other {cfg.policy_features - 1} are standard normal noise.
- Concordant: {cfg.concordant} (when true the report states what the image shows, so either modality suffices).
- Distractor conflict: {cfg.distractor_conflict} (the probability that the modality the switch does not name
  states the opposite of the label; 0.5: independent of it; above 0.5: a conflicting distractor).
- Label: as the switch says. A model ignoring the switch is capped near 1 - p/2 accuracy for distractor
  conflict p (75 % for independent distractors, 60 % at 0.8).
- DICOM: one file per slice, `PatientName` `SYNTHETIC^<case>`, `SeriesDescription` `SYNTHETIC phantom from <source>`.
- The lesion is deliberately conspicuous (brighter than cortical bone after the [-1000, 1000] HU window) so that
  even briefly trained or frozen encoders see it; real nodules are far subtler.
- Known limits: one source slice per volume (no real 3D anatomy); the lesion is brighter and rounder than real
  nodules; report language is templated.
"""
    )
