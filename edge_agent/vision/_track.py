"""One tracked face and its last K frames: the model input for the newest frame, identical at train and serve time."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.vision._faces import FaceBox, crop_face
from edge_agent.vision._preprocess import build_input

__all__ = ["FaceHistory", "HistoryConfig"]


@dataclass(frozen=True, kw_only=True)
class HistoryConfig:
    """How a face track is kept. The model's metadata fixes ``history``, ``input_size`` and ``crop_scale``."""

    #: K: frames in the history (the newest included).
    history: int = 4
    #: S: the square crop side the model takes.
    input_size: int = 64
    #: Crop side as a multiple of the face box's larger side (some context around the face).
    crop_scale: float = 1.4
    #: Weight of the new detection in the smoothed box (1: no smoothing).
    box_smoothing: float = 0.5
    #: A detection whose centre moved more than this fraction of the face size since the last frame, or whose
    #: size changed by more than this fraction, starts a new track (a different face, or a detector jump).
    jump_fraction: float = 0.35
    #: Detector misses tolerated before the track is dropped (0: drop on the first miss). A missed frame adds
    #: nothing to the history; the track and its frames are kept, so one miss does not cost K frames of waiting.
    max_missed: int = 3

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError("history must be >= 1")
        if self.input_size < 8:
            raise ValueError("input_size must be >= 8")
        if not 0.0 < self.box_smoothing <= 1.0:
            raise ValueError("box_smoothing must be in (0, 1]")
        if self.max_missed < 0:
            raise ValueError("max_missed must be >= 0")


class FaceHistory:
    """The current face track: its smoothed box and its last ``history`` frames.

    ``update(frame, box)`` adds a frame with the face detected in it (or None) and returns the model input for
    that frame, built by cutting *every* frame of the history with the current smoothed box, so that the
    temporal channels see the face's own motion in a fixed camera window. The history starts again when the
    face is lost (more than ``max_missed`` frames without one) or jumps (``jump_fraction``).
    """

    def __init__(self, config: HistoryConfig | None = None) -> None:
        self.config = config or HistoryConfig()
        self._frames: deque[NDArray[np.uint8]] = deque(maxlen=self.config.history)
        self._box: tuple[float, float, float, float] | None = None
        self._missed = 0
        #: Tracks dropped so far (face lost or jumped).
        self.resets = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def full(self) -> bool:
        """Whether the history holds ``history`` frames (the model's temporal channels are complete)."""
        return len(self._frames) == self.config.history

    @property
    def box(self) -> FaceBox | None:
        """The smoothed box of the current track, or None without a track."""
        if self._box is None:
            return None
        x, y, w, h = self._box
        return FaceBox(round(x), round(y), round(w), round(h))

    def reset(self) -> None:
        """Forget the track and its frames."""
        if self._frames or self._box is not None:
            self.resets += 1
        self._frames.clear()
        self._box = None
        self._missed = 0

    def _jumped(self, box: FaceBox) -> bool:
        if self._box is None:
            return False
        x, y, w, h = self._box
        size = max(w, h)
        cx, cy = box.center
        moved = float(np.hypot(cx - (x + w / 2.0), cy - (y + h / 2.0)))
        ratio = max(box.w, box.h) / size
        limit = self.config.jump_fraction
        return moved > limit * size or not (1.0 - limit) <= ratio <= 1.0 / (1.0 - limit)

    def update(self, frame: NDArray[np.uint8], box: FaceBox | None) -> NDArray[np.float32] | None:
        """Add ``frame`` with its detected face (None: no face). Returns the model input, or None without a face."""
        if box is None:
            self._missed += 1
            if self._missed > self.config.max_missed:
                self.reset()
            return None
        if self._jumped(box):
            self.reset()
        self._missed = 0
        new = (float(box.x), float(box.y), float(box.w), float(box.h))
        if self._box is None:
            self._box = new
        else:
            a = self.config.box_smoothing
            self._box = (
                self._box[0] + a * (new[0] - self._box[0]),
                self._box[1] + a * (new[1] - self._box[1]),
                self._box[2] + a * (new[2] - self._box[2]),
                self._box[3] + a * (new[3] - self._box[3]),
            )
        self._frames.append(frame)
        cfg = self.config
        crops = [crop_face(f, self._box, size=cfg.input_size, scale=cfg.crop_scale) for f in self._frames]
        return build_input(crops)
