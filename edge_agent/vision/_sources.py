"""Async camera sources (the base class; the kinds are in ``_source_kinds``). Frames are stamped at capture.

Blocking OpenCV reads run in a worker thread (``asyncio.to_thread``); a frame's ``captured_at_ns`` is as close
to the capture as the source allows, on the kiosk's wall clock (the one the RFID reader stamps with): a camera's
driver timestamp where it gives one, else the moment the frame was grabbed, before it is decoded; only a source
that can do neither is stamped after its read returns. ``received_at_ns`` is when the decoded frame was handed
over (the pair feeds the online clock-offset estimate).
Sources are paced to ``fps`` (a file or folder plays at that rate; a camera is asked for it and read no faster);
``set_fps`` changes the rate at runtime, taking effect for the very next frame, even mid-wait.
"""

from __future__ import annotations

import abc
import asyncio
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Frame", "FrameSource", "FrameSourceError", "SourceNotFoundError"]


class FrameSourceError(RuntimeError):
    """A camera source cannot be opened or read."""


class SourceNotFoundError(FrameSourceError, FileNotFoundError):
    """The device, file or folder named by a source does not exist."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured frame: BGR uint8 ``image``, capture stamp, 0-based ``index`` in its source, and when it was
    handed over (kiosk clock; None: not known)."""

    image: NDArray[np.uint8]
    captured_at_ns: int
    index: int
    source: str
    received_at_ns: int | None = None


class FrameSource(abc.ABC):
    """Base of every source: ``async with source:`` / ``start``+``stop``, ``await read()``, ``async for``."""

    def __init__(self, name: str, *, fps: float | None = None, loop: bool = False) -> None:
        self.name = name
        self.loop = loop
        self._fps = self._check_fps(fps)
        self._started = False
        self._index = 0
        self._due_ns: int | None = None  # monotonic time the next frame is due
        self._last_due_ns: int | None = None
        self._fps_changed = asyncio.Event()
        self._lock = asyncio.Lock()
        self._inflight: asyncio.Future[Any] | None = None

    @staticmethod
    def _check_fps(fps: float | None) -> float | None:
        if fps is not None and not (fps > 0 and np.isfinite(fps)):
            raise ValueError(f"fps must be a positive number or None, got {fps!r}")
        return fps

    @property
    def fps(self) -> float | None:
        """The pacing rate in frames per second (None: unpaced, as fast as the source delivers)."""
        return self._fps

    @property
    def started(self) -> bool:
        return self._started

    def set_fps(self, fps: float | None) -> None:
        """Change the frame rate now (e.g. a cloud scaling command): the next frame is due one new period after
        the last one, also when a ``read`` is already waiting for it."""
        self._fps = self._check_fps(fps)
        if self._last_due_ns is not None:
            self._due_ns = self._last_due_ns + self._period_ns() if self._fps is not None else None
        self._fps_changed.set()
        self._on_fps(self._fps)

    def _period_ns(self) -> int:
        return 0 if self._fps is None else round(1e9 / self._fps)

    def _on_fps(self, fps: float | None) -> None:  # noqa: B027 - optional hook
        """Subclass hook: a camera is asked for the new rate."""

    # --- blocking parts, run in a worker thread -------------------------------------------------------------
    @abc.abstractmethod
    def _open(self) -> None: ...

    @abc.abstractmethod
    def _read(self) -> NDArray[np.uint8] | None:
        """The next image, or None at the end."""

    def _read_stamped(self) -> tuple[NDArray[np.uint8] | None, int | None]:
        """The next image and its capture stamp (None: the source cannot tell; the read's return is used)."""
        return self._read(), None

    def _rewind(self) -> bool:
        """Go back to the first frame (for ``loop``); False when the source cannot."""
        return False

    @abc.abstractmethod
    def _close(self) -> None: ...

    def _native_fps(self) -> float | None:
        return None

    # --- async API ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the source (idempotent). Raises ``SourceNotFoundError`` / ``FrameSourceError``."""
        if self._started:
            return
        await asyncio.to_thread(self._open)
        if self._fps is None:
            self._fps = self._native_fps()
        self._started = True

    async def stop(self) -> None:
        """Close the source after any read in progress has returned (idempotent); a read waiting for its frame's
        due time returns None."""
        was_started, self._started = self._started, False
        self._fps_changed.set()  # wake a paced read
        if self._inflight is not None and not self._inflight.done():
            await asyncio.wait([self._inflight])
        if was_started:
            await asyncio.to_thread(self._close)

    async def __aenter__(self) -> FrameSource:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __aiter__(self) -> FrameSource:
        return self

    async def __anext__(self) -> Frame:
        frame = await self.read()
        if frame is None:
            raise StopAsyncIteration
        return frame

    async def _wait_due(self) -> None:
        while self._due_ns is not None and self._started:
            self._fps_changed.clear()
            remaining = self._due_ns - time.monotonic_ns()
            if remaining <= 0:
                return
            try:
                await asyncio.wait_for(self._fps_changed.wait(), remaining / 1e9)
            except TimeoutError:
                return
            # woken by set_fps: wait again for the re-computed due time

    def _grab(self) -> tuple[NDArray[np.uint8] | None, int, int]:
        image, stamp = self._read_stamped()
        if image is None and self.loop and self._rewind():
            image, stamp = self._read_stamped()
        received = time.time_ns()
        return image, received if stamp is None else stamp, received

    async def read(self) -> Frame | None:
        """The next frame, paced to ``fps``; None at the end of a file or folder (not looping)."""
        if not self._started:
            await self.start()
        async with self._lock:
            await self._wait_due()
            if not self._started:  # stopped while waiting
                return None
            started = time.monotonic_ns()
            self._inflight = asyncio.ensure_future(asyncio.to_thread(self._grab))
            image, stamp, received = await asyncio.shield(self._inflight)
            if image is None:
                return None
            # The next frame is due one period after this one was; after a stall, now (no burst to catch up).
            base = self._due_ns if self._due_ns is not None else started
            self._last_due_ns = base
            period = self._period_ns()
            self._due_ns = max(base + period, time.monotonic_ns()) if period else None
            frame = Frame(image, stamp, self._index, self.name, received)
            self._index += 1
            return frame
