"""OpenCV, imported on first use (it is heavy) and typed loosely (its stubs type arrays as generic numbers)."""

from __future__ import annotations

from typing import Any

__all__ = ["cv2"]


def cv2() -> Any:
    """The ``cv2`` module."""
    import cv2 as module

    return module
