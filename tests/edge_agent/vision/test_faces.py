"""Haar face detection on the real photograph and on generated frames; square crops."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from edge_agent.vision import FaceBox, FaceDetector, crop_face, face_input, list_clips


def test_finds_grace_hoppers_face(grace_hopper: np.ndarray, detector: FaceDetector) -> None:
    box = detector.largest(grace_hopper)
    assert box is not None
    # The face is in the upper middle of the 512x600 portrait (eyes near y = 190).
    cx, cy = box.center
    assert 200 < cx < 330 and 150 < cy < 280 and 150 < box.w < 300


def test_finds_the_face_in_generated_live_frames(small_dataset: Path, detector: FaceDetector) -> None:
    frames = [p for clip in list_clips(small_dataset) if clip.live for p in clip.frames]
    found = [detector.largest(cv2.imread(str(p))) for p in frames]
    assert sum(b is not None for b in found) >= 0.9 * len(frames)


def test_no_face_in_a_blank_frame(detector: FaceDetector) -> None:
    assert detector.detect(np.full((240, 320, 3), 90, np.uint8)) == []


def test_crop_is_square_model_sized_and_replicates_edges(grace_hopper: np.ndarray) -> None:
    crop = crop_face(grace_hopper, FaceBox(-40, -30, 120, 120), size=64, scale=1.4)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    x = face_input(grace_hopper, FaceBox(150, 100, 200, 200), size=80)
    assert x.shape == (1, 3, 80, 80) and x.dtype == np.float32


def test_iou() -> None:
    a = FaceBox(0, 0, 10, 10)
    assert a.iou(a) == 1.0
    assert a.iou(FaceBox(5, 0, 10, 10)) == 50 / 150
    assert a.iou(FaceBox(20, 20, 5, 5)) == 0.0
