"""Sensor fusion: card reads joined with face-liveness results by timestamp (±50 ms by default)."""

from __future__ import annotations

from edge_agent.fusion._align import (
    CardRead,
    Decision,
    Fuser,
    FusionConfig,
    LivenessResult,
    Verdict,
    estimate_clock_offset,
    fuse_batch,
)
from edge_agent.fusion._clock import ClockOffsetConfig, ClockOffsetEstimator

__all__ = [
    "CardRead",
    "ClockOffsetConfig",
    "ClockOffsetEstimator",
    "Decision",
    "Fuser",
    "FusionConfig",
    "LivenessResult",
    "Verdict",
    "estimate_clock_offset",
    "fuse_batch",
]
