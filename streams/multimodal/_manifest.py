"""The case manifest a hospital fills in (CSV or JSONL), validated before anything trains on it.

Columns: ``case_id``, ``dicom_dir`` (a folder holding one DICOM series; relative paths are taken from the
manifest's folder), ``report`` (free text), ``policy`` (a JSON list of numbers, or ``;``-separated numbers in
CSV), ``label`` (an integer class). Other columns (e.g. ``synthetic``) are kept as they are. Every problem is
reported with its line and column, all at once, in a :class:`ManifestError`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["REQUIRED_COLUMNS", "Case", "ManifestError", "load_manifest"]

REQUIRED_COLUMNS = ("case_id", "dicom_dir", "report", "policy", "label")


class ManifestError(ValueError):
    """The manifest cannot be used; ``problems`` lists each one as ``line N: ...``."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        super().__init__(f"{path}: {len(problems)} problem(s):\n  {shown}")


@dataclass(frozen=True, kw_only=True)
class Case:
    """One validated case."""

    case_id: str
    dicom_dir: Path
    report: str
    policy: tuple[float, ...]
    label: int
    extra: dict[str, Any] = field(default_factory=dict)

    def sample(self) -> dict[str, Any]:
        """The dict the MONAI transforms start from."""
        return {
            "case_id": self.case_id,
            "image": str(self.dicom_dir),
            "report": self.report,
            "policy": list(self.policy),
            "label": self.label,
        }


def _rows(path: Path) -> Iterable[tuple[int, dict[str, Any] | str]]:
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise ManifestError(path, [f"line 1: missing column(s) {missing}; have {reader.fieldnames}"])
            for n, row in enumerate(reader, start=2):
                yield n, dict(row)
        return
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield n, f"line {n}: not JSON ({exc})"
            continue
        yield n, obj if isinstance(obj, dict) else f"line {n}: expected a JSON object, got {type(obj).__name__}"


def _policy(value: Any) -> tuple[float, ...]:
    if isinstance(value, str):
        text = value.strip()
        value = json.loads(text) if text.startswith("[") else [v for v in text.split(";") if v.strip()]
    if not isinstance(value, list) or not value:
        raise ValueError("policy must be a non-empty list of numbers")
    out = tuple(float(v) for v in value)
    if not all(math.isfinite(v) for v in out):
        raise ValueError("policy holds a non-finite number")
    return out


def _label(value: Any, num_classes: int) -> int:
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"label must be an integer, got {value!r}")
    label = int(value)
    if not 0 <= label < num_classes:
        raise ValueError(f"label must be in [0, {num_classes}), got {label}")
    return label


def _check_series(folder: Path) -> str | None:
    """None when ``folder`` holds at least one readable DICOM image, else why not."""
    if not folder.is_dir():
        return f"DICOM folder {folder} does not exist"
    files = sorted(p for p in folder.iterdir() if p.is_file())
    if not files:
        return f"DICOM folder {folder} is empty (missing series)"
    import pydicom
    from pydicom.errors import InvalidDicomError

    for p in files:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError) as exc:
            return f"unreadable DICOM {p.name} in {folder}: {exc}"
        if "PixelData" not in ds and not {"Rows", "Columns"} <= set(ds.dir()):
            return f"{p.name} in {folder} holds no image"
    return None


def load_manifest(
    path: str | Path, *, policy_features: int | None = None, num_classes: int = 2, check_dicom: bool = True
) -> list[Case]:
    """Read and validate ``path``; raise :class:`ManifestError` listing every problem."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(path, [f"manifest {path} does not exist"])
    base = path.parent
    problems: list[str] = []
    cases: list[Case] = []
    seen: set[str] = set()
    for n, row in _rows(path):
        if isinstance(row, str):
            problems.append(row)
            continue
        missing = [c for c in REQUIRED_COLUMNS if c not in row]
        if missing:
            problems.append(f"line {n}: missing column(s) {missing}")
            continue
        case_id = str(row["case_id"]).strip()
        try:
            if not case_id:
                raise ValueError("case_id is empty")
            if case_id in seen:
                raise ValueError(f"duplicate case_id {case_id!r}")
            policy = _policy(row["policy"])
            if policy_features is not None and len(policy) != policy_features:
                raise ValueError(f"policy has {len(policy)} features, the model takes {policy_features}")
            label = _label(row["label"], num_classes)
            report = row["report"]
            if not isinstance(report, str) or not report.strip():
                raise ValueError("report is empty")
        except (ValueError, TypeError) as exc:
            problems.append(f"line {n} ({case_id or '?'}): {exc}")
            continue
        seen.add(case_id)
        folder = Path(str(row["dicom_dir"]))
        folder = folder if folder.is_absolute() else base / folder
        why = _check_series(folder) if check_dicom else None
        if why is not None:
            problems.append(f"line {n} ({case_id}): {why}")
            continue
        extra = {k: v for k, v in row.items() if k not in REQUIRED_COLUMNS}
        cases.append(Case(case_id=case_id, dicom_dir=folder, report=report, policy=policy, label=label, extra=extra))
    if not problems and not cases:
        problems.append("the manifest holds no cases")
    if not problems and len({len(c.policy) for c in cases}) > 1:
        problems.append("cases have different numbers of policy features")
    if problems:
        raise ManifestError(path, problems)
    return cases
