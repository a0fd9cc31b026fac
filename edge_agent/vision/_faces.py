"""Face detection (OpenCV Haar cascade) and square face crops at the model's input size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_agent.vision._cv import cv2 as load_cv2
from edge_agent.vision._preprocess import normalize_crop

__all__ = ["DEFAULT_CASCADE", "FaceBox", "FaceDetector", "crop_face", "face_input"]

#: The frontal-face cascade shipped in ``cv2.data.haarcascades`` (opencv-python 4.x).
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"


@dataclass(frozen=True, slots=True)
class FaceBox:
    """A face rectangle in frame pixels: top-left ``(x, y)``, width ``w``, height ``h``."""

    x: int
    y: int
    w: int
    h: int

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2.0, self.y + self.h / 2.0

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h

    def iou(self, other: FaceBox) -> float:
        """Intersection over union with ``other`` (0 when disjoint)."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


class FaceDetector:
    """Frontal faces with a Haar cascade; frames wider than ``detect_width`` are shrunk first (speed).

    ``min_size_fraction`` is the smallest face to report, as a fraction of the (shrunk) frame width: a kiosk
    user stands close, so tiny faces in the background are ignored.
    """

    def __init__(
        self,
        *,
        cascade: str | Path | None = None,
        scale_factor: float = 1.15,
        min_neighbors: int = 5,
        min_size_fraction: float = 0.18,
        detect_width: int = 320,
    ) -> None:
        cv2 = load_cv2()  # heavy: only when a detector is made

        path = Path(cascade) if cascade is not None else Path(cv2.data.haarcascades) / DEFAULT_CASCADE
        if not path.is_file():
            raise FileNotFoundError(f"Haar cascade {path} not found (opencv-python-headless 4.x ships it)")
        self._cv2 = cv2
        self._cascade: Any = cv2.CascadeClassifier(str(path))
        if self._cascade.empty():
            raise ValueError(f"{path} is not a usable Haar cascade")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_fraction = min_size_fraction
        self.detect_width = detect_width

    def detect(self, image: NDArray[np.uint8]) -> list[FaceBox]:
        """All faces in a BGR (or gray) uint8 image, largest first, in the image's own pixels."""
        cv2 = self._cv2
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        height, width = gray.shape[:2]
        scale = 1.0
        if width > self.detect_width:
            scale = width / self.detect_width
            gray = cv2.resize(gray, (self.detect_width, round(height / scale)), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        side = max(20, round(self.min_size_fraction * gray.shape[1]))
        found = self._cascade.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors, minSize=(side, side)
        )
        boxes = [
            FaceBox(round(x * scale), round(y * scale), round(w * scale), round(h * scale))
            for x, y, w, h in np.asarray(found, dtype=np.int64).reshape(-1, 4)
        ]
        return sorted(boxes, key=lambda b: (-b.area, b.x, b.y))

    def largest(self, image: NDArray[np.uint8]) -> FaceBox | None:
        """The largest face in ``image``, or None."""
        boxes = self.detect(image)
        return boxes[0] if boxes else None


def _square(box: FaceBox | tuple[float, float, float, float], scale: float) -> tuple[int, int, int]:
    x, y, w, h = box.as_tuple() if isinstance(box, FaceBox) else box
    side = max(2, round(max(w, h) * scale))
    x0 = round(x + w / 2.0 - side / 2.0)
    y0 = round(y + h / 2.0 - side / 2.0)
    return x0, y0, side


def crop_face(
    image: NDArray[np.uint8], box: FaceBox | tuple[float, float, float, float], *, size: int, scale: float = 1.4
) -> NDArray[np.uint8]:
    """A square ``size x size x 3`` BGR crop centred on ``box``, side ``scale x max(w, h)``.

    Parts outside the frame repeat the edge pixels; downscaling averages areas (``cv2.INTER_AREA``).
    """
    cv2 = load_cv2()

    x0, y0, side = _square(box, scale)
    height, width = image.shape[:2]
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(width, x0 + side), min(height, y0 + side)
    if sx1 <= sx0 or sy1 <= sy0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} frame")
    region = image[sy0:sy1, sx0:sx1]
    if (sx0, sy0, sx1, sy1) != (x0, y0, x0 + side, y0 + side):
        region = cv2.copyMakeBorder(
            region, sy0 - y0, y0 + side - sy1, sx0 - x0, x0 + side - sx1, borderType=cv2.BORDER_REPLICATE
        )
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_LINEAR
    crop: NDArray[np.uint8] = cv2.resize(region, (size, size), interpolation=interp)
    return crop


def face_input(
    image: NDArray[np.uint8], box: FaceBox | tuple[float, float, float, float], *, size: int, scale: float = 1.4
) -> NDArray[np.float32]:
    """One face as a normalised float32 NCHW batch ``1 x 3 x size x size`` (colour channels only)."""
    return normalize_crop(crop_face(image, box, size=size, scale=scale))[None]
