"""A DNN face detector through ``cv2.dnn`` (the public RetinaFace Caffe model), with Haar as the fallback.

The model files are data, read from a configured folder (``deploy.prototxt`` and
``Widerface-RetinaFace.caffemodel``, as published with Silent-Face-Anti-Spoofing); they are never shipped in
this repository. ``open_face_detector`` picks the DNN detector when its files load and the Haar cascade
(shipped inside the opencv-python wheel) otherwise, so a fresh clone always has a detector.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from edge_agent.vision._cv import cv2 as load_cv2
from edge_agent.vision._faces import FaceBox, FaceDetector

__all__ = [
    "RETINAFACE_FILES",
    "DetectorKind",
    "FaceLocator",
    "RetinaFaceDetector",
    "open_face_detector",
]

_log = logging.getLogger(__name__)

#: The two files of the Caffe RetinaFace detector: network definition, weights.
RETINAFACE_FILES = ("deploy.prototxt", "Widerface-RetinaFace.caffemodel")
DetectorKind = Literal["auto", "retinaface", "haar"]


class FaceLocator(Protocol):
    """What the liveness pipelines need of a face detector."""

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]: ...

    def largest(self, image: NDArray[np.uint8]) -> FaceBox | None: ...


class RetinaFaceDetector:
    """RetinaFace (Caffe) through ``cv2.dnn``: frames larger than ``max_side``² pixels are shrunk first, keeping
    their aspect ratio (the published practice: 192² pixels); faces scoring above ``confidence`` are reported."""

    def __init__(self, model_dir: Path, *, confidence: float = 0.6, max_side: int = 192, threads: int = 1) -> None:
        cv2 = load_cv2()
        proto, weights = (Path(model_dir) / name for name in RETINAFACE_FILES)
        for path in (proto, weights):
            if not path.is_file():
                raise FileNotFoundError(f"RetinaFace file {path} not found")
        self._cv2 = cv2
        self._net: Any = cv2.dnn.readNetFromCaffe(str(proto), str(weights))
        if threads > 0:
            cv2.setNumThreads(threads)
        self.confidence = confidence
        self.max_side = max_side

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """Faces in a BGR uint8 image above the confidence, most confident first, in the image's pixels."""
        cv2 = self._cv2
        height, width = image.shape[:2]
        small = image
        if width * height >= self.max_side * self.max_side:
            aspect = width / height
            size = (round(self.max_side * math.sqrt(aspect)), round(self.max_side / math.sqrt(aspect)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        blob = cv2.dnn.blobFromImage(small, 1.0, mean=(104, 117, 123))
        self._net.setInput(blob, "data")
        out = np.asarray(self._net.forward("detection_out"), dtype=np.float32).reshape(-1, 7)
        out = out[out[:, 2] > self.confidence]
        out = out[np.argsort(-out[:, 2], kind="stable")]
        boxes = []
        for _, _, _, x0, y0, x1, y1 in out:
            left, top = max(0.0, float(x0) * width), max(0.0, float(y0) * height)
            right, bottom = min(width - 1.0, float(x1) * width), min(height - 1.0, float(y1) * height)
            if right - left >= 2 and bottom - top >= 2:
                boxes.append(FaceBox(int(left), int(top), int(right - left + 1), int(bottom - top + 1)))
        return boxes

    def largest(self, image: NDArray[np.uint8]) -> FaceBox | None:
        """The most confident face (the kiosk user stands closest), or None."""
        boxes = self.detect(image)
        return boxes[0] if boxes else None


def open_face_detector(kind: DetectorKind = "auto", model_dir: Path | None = None) -> FaceLocator:
    """The configured detector: ``retinaface`` (its files must load), ``haar``, or ``auto`` (RetinaFace when
    ``model_dir`` holds its files and they load, else Haar, with a warning naming the reason)."""
    if kind == "haar":
        return FaceDetector()
    if kind == "retinaface":
        if model_dir is None:
            raise ValueError("the retinaface detector needs its model folder (deploy.prototxt + caffemodel)")
        return RetinaFaceDetector(model_dir)
    if kind != "auto":
        raise ValueError(f"unknown face detector {kind!r}; expected auto, retinaface or haar")
    if model_dir is not None:
        try:
            return RetinaFaceDetector(model_dir)
        except Exception as exc:  # a missing file, or cv2.error (which derives from Exception only)
            _log.warning("RetinaFace detector unavailable (%s); using the Haar cascade", exc)
    return FaceDetector()
