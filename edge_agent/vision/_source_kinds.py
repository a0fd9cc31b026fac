"""The camera source kinds: a device index, a video file, an image folder; ``open_source`` picks one from a spec."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_agent.vision._cv import cv2 as load_cv2
from edge_agent.vision._sources import FrameSource, FrameSourceError, SourceNotFoundError

__all__ = [
    "DEFAULT_FOLDER_FPS",
    "DeviceSource",
    "ImageFolderSource",
    "VideoFileSource",
    "driver_stamp_to_wall",
    "open_source",
]

DEFAULT_FOLDER_FPS = 15.0
_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


class _CaptureSource(FrameSource):
    """A source backed by ``cv2.VideoCapture``."""

    _cap: Any = None

    def _read(self) -> NDArray[np.uint8] | None:
        if self._cap is None:
            return None
        ok, image = self._cap.read()
        return image if ok and image is not None else None

    def _read_stamped(self) -> tuple[NDArray[np.uint8] | None, int | None]:
        # grab() returns once the frame is captured; decoding (retrieve) happens after the stamp.
        if self._cap is None or not self._cap.grab():
            return None, None
        stamp = self._capture_stamp()
        ok, image = self._cap.retrieve()
        return (image if ok and image is not None else None), stamp

    def _capture_stamp(self) -> int:
        return time.time_ns()

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class DeviceSource(_CaptureSource):
    """A camera by device index (``cv2.VideoCapture(index)``; ``/dev/video<index>`` on Linux)."""

    def __init__(self, index: int, *, fps: float | None = None) -> None:
        super().__init__(f"device:{index}", fps=fps)
        self.index = index
        self._pending_fps: float | None = fps

    def _open(self) -> None:
        cv2 = load_cv2()

        if sys.platform.startswith("linux") and not Path(f"/dev/video{self.index}").exists():
            raise SourceNotFoundError(f"camera device {self.index} not found (/dev/video{self.index} does not exist)")
        cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            cap.release()
            raise FrameSourceError(f"camera device {self.index} could not be opened (busy, or not a camera?)")
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # keep frames fresh when we read slower than the camera
        self._cap = cap
        self._apply_fps()

    def _apply_fps(self) -> None:
        cv2 = load_cv2()

        if self._cap is not None and self._pending_fps is not None:
            self._cap.set(cv2.CAP_PROP_FPS, float(self._pending_fps))
            self._pending_fps = None

    def _on_fps(self, fps: float | None) -> None:
        self._pending_fps = fps  # applied by the worker thread before its next read (VideoCapture is not shared)

    def _read(self) -> NDArray[np.uint8] | None:
        self._apply_fps()
        return super()._read()

    def _read_stamped(self) -> tuple[NDArray[np.uint8] | None, int | None]:
        self._apply_fps()
        return super()._read_stamped()

    def _capture_stamp(self) -> int:
        return driver_stamp_to_wall(self._cap.get(load_cv2().CAP_PROP_POS_MSEC), time.monotonic_ns(), time.time_ns())


class VideoFileSource(_CaptureSource):
    """A video file, played at ``fps`` (None: the file's own rate, 30 when it has none)."""

    def __init__(self, path: Path, *, fps: float | None = None, loop: bool = False) -> None:
        path = Path(path)
        if not path.is_file():
            raise SourceNotFoundError(f"video file {path} does not exist")
        super().__init__(f"video:{path}", fps=fps, loop=loop)
        self.path = path

    def _open(self) -> None:
        cv2 = load_cv2()

        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise FrameSourceError(f"video file {self.path} could not be opened (unsupported or corrupt?)")
        self._cap = cap

    def _native_fps(self) -> float | None:
        cv2 = load_cv2()

        native = float(self._cap.get(cv2.CAP_PROP_FPS)) if self._cap is not None else 0.0
        return native if native > 0 and np.isfinite(native) else 30.0

    def _rewind(self) -> bool:
        cv2 = load_cv2()

        return bool(self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0))


class ImageFolderSource(FrameSource):
    """The images of a folder in sorted file-name order, played at ``fps`` (None: ``DEFAULT_FOLDER_FPS``)."""

    def __init__(self, path: Path, *, fps: float | None = None, loop: bool = False) -> None:
        path = Path(path)
        if not path.is_dir():
            raise SourceNotFoundError(f"image folder {path} does not exist")
        super().__init__(f"images:{path}", fps=fps, loop=loop)
        self.path = path
        self._files: list[Path] = []
        self._next = 0

    def _open(self) -> None:
        self._files = sorted(p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES)
        if not self._files:
            raise FrameSourceError(f"image folder {self.path} holds no images ({', '.join(sorted(_IMAGE_SUFFIXES))})")
        self._next = 0

    def _native_fps(self) -> float | None:
        return DEFAULT_FOLDER_FPS

    def _read(self) -> NDArray[np.uint8] | None:
        cv2 = load_cv2()

        if self._next >= len(self._files):
            return None
        path = self._files[self._next]
        self._next += 1
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise FrameSourceError(f"{path} is not a readable image")
        result: NDArray[np.uint8] = image
        return result

    def _rewind(self) -> bool:
        self._next = 0
        return True

    def _close(self) -> None:
        self._files = []


_DEVICE = re.compile(r"^(?:device:)?(\d+)$")


def driver_stamp_to_wall(pos_msec: float, monotonic_ns: int, wall_ns: int) -> int:
    """A V4L2 buffer timestamp (``CAP_PROP_POS_MSEC``: milliseconds on the monotonic clock) on the wall clock.

    Falls back to ``wall_ns`` (the grab's return) when the driver gives no plausible stamp: zero, negative, not
    on the monotonic clock (another backend's position in the stream), or in the future.
    """
    stamp_ns = round(pos_msec * 1e6)
    if not 0 < monotonic_ns - stamp_ns < 1_000_000_000:
        return wall_ns
    return stamp_ns + (wall_ns - monotonic_ns)


def open_source(spec: str, *, fps: float | None = None, loop: bool = False) -> FrameSource:
    """A source from a spec: ``"0"`` or ``"device:0"`` (camera), a video file path, or an image folder path.

    Missing files and folders raise ``SourceNotFoundError`` here; a missing camera raises it at ``start``.
    """
    match = _DEVICE.match(spec.strip())
    if match:
        return DeviceSource(int(match.group(1)), fps=fps)
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageFolderSource(path, fps=fps, loop=loop)
    if path.is_file():
        return VideoFileSource(path, fps=fps, loop=loop)
    raise SourceNotFoundError(f"camera source {spec!r}: no such device, video file or image folder")
