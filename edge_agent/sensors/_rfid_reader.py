"""Async RFID reader on a serial port: frames out, surviving the port going away and coming back."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import serial
import serial_asyncio

from edge_agent.sensors._rfid_frames import CardFrame, Debouncer, FrameFormat, LineAlphabet, RfidFrameParser

__all__ = ["FrameCallback", "RfidReader", "RfidReaderConfig", "RfidReaderStats"]

_log = logging.getLogger(__name__)

FrameCallback = Callable[[CardFrame], Awaitable[None] | None]
_STOP = object()


@dataclass(frozen=True, kw_only=True)
class RfidReaderConfig:
    """Where the reader is and how to treat it. The defaults fit the seed's 115200-baud reader."""

    port: str
    baudrate: int = 115200
    #: The same card seen again within this many milliseconds of its last sighting is one read (0: off).
    debounce_ms: int = 1000
    reconnect_initial_s: float = 0.1
    reconnect_max_s: float = 5.0
    #: While the port is silent, how often to check that the path still names the device we opened.
    presence_check_s: float = 0.5
    frame_formats: tuple[FrameFormat, ...] = ("em4100", "line")
    line_min_chars: int = 8
    line_max_chars: int = 20
    line_alphabet: LineAlphabet = "hex"
    #: Exact line-mode lengths a site's cards have (empty: any length in ``line_min_chars..line_max_chars``).
    line_lengths: tuple[int, ...] = ()
    #: Frames waiting for the consumer; when full the oldest is dropped (and counted).
    queue_size: int = 1024
    read_size: int = 1024


@dataclass(frozen=True, slots=True)
class RfidReaderStats:
    """Counters of one reader since it was created."""

    frames: int
    bad_checksum: int
    garbage_bytes: int
    debounced: int
    dropped: int
    connects: int
    disconnects: int
    connected: bool


class _PortGone(Exception):
    """The path no longer names the device that was opened."""


class RfidReader:
    """Reads card frames from a serial port; use ``async for frame in reader.frames()`` or ``on_frame``.

    Each read is stamped with ``time.time_ns()`` as it arrives. When the port disappears (read error, end of
    file, or the path removed or re-pointed) the reader closes it and reopens the path with exponential backoff
    (``reconnect_initial_s`` doubling up to ``reconnect_max_s``) until it is back; a partial frame from before
    the gap is discarded and every connection starts resynchronising (see ``RfidFrameParser``).
    ``start``/``stop`` or ``async with``; ``stop`` is idempotent.
    """

    def __init__(self, config: RfidReaderConfig, *, on_frame: FrameCallback | None = None) -> None:
        self.config = config
        self._on_frame = on_frame
        self._parser = RfidFrameParser(
            frame_formats=config.frame_formats,
            line_min_chars=config.line_min_chars,
            line_max_chars=config.line_max_chars,
            line_alphabet=config.line_alphabet,
            line_lengths=config.line_lengths,
        )
        self._debouncer = Debouncer(config.debounce_ms * 1_000_000)
        self._queue: asyncio.Queue[CardFrame | object] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._crash: BaseException | None = None
        self._started = False
        self._stopped = False
        self._connected = False
        self._dropped = 0
        self._connects = 0
        self._disconnects = 0

    @property
    def connected(self) -> bool:
        """True while the port is open."""
        return self._connected

    def stats(self) -> RfidReaderStats:
        """A snapshot of the counters."""
        p = self._parser.stats()
        return RfidReaderStats(
            frames=p.frames,
            bad_checksum=p.bad_checksum,
            garbage_bytes=p.garbage_bytes,
            debounced=self._debouncer.suppressed,
            dropped=self._dropped,
            connects=self._connects,
            disconnects=self._disconnects,
            connected=self._connected,
        )

    async def start(self) -> None:
        """Start reading in the background (the port need not exist yet)."""
        if self._started:
            raise RuntimeError("RfidReader.start() called twice")
        self._started = True
        self._spawn(self._run(), "rfid-reader")
        if self._on_frame is not None:
            self._spawn(self._dispatch(self._on_frame), "rfid-dispatch")

    async def stop(self) -> None:
        """Stop reading and close the port; safe to call more than once, or before ``start``."""
        if self._stopped:
            return
        self._stopped = True
        for task in self._tasks:
            task.cancel()
        # A crash was already logged and handed to frames(); stop only has to make sure the tasks are gone.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._queue.put_nowait(_STOP)

    async def __aenter__(self) -> RfidReader:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def frames(self) -> AsyncIterator[CardFrame]:
        """Debounced frames as they arrive, until ``stop``; one consumer only, not with ``on_frame``."""
        if self._on_frame is not None:
            raise RuntimeError("frames() cannot be used together with on_frame")
        while True:
            item = await self._queue.get()
            if isinstance(item, CardFrame):
                yield item
                continue
            self._queue.put_nowait(_STOP)  # later frames() calls end too
            if self._crash is not None:
                raise RuntimeError("RFID reader task crashed") from self._crash
            return

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=f"{name}:{self.config.port}")
        task.add_done_callback(self._on_task_done)
        self._tasks.append(task)

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        self._crash = task.exception()
        _log.critical("%s crashed; no more card reads from %s", task.get_name(), self.config.port, exc_info=self._crash)
        self._queue.put_nowait(_STOP)

    def _deliver(self, frame: CardFrame) -> None:
        if self._queue.qsize() >= self.config.queue_size:
            self._queue.get_nowait()
            self._dropped += 1
        self._queue.put_nowait(frame)

    async def _dispatch(self, callback: FrameCallback) -> None:
        # Callbacks run here, not in the read loop, so a slow one never stalls reading.
        while True:
            item = await self._queue.get()
            if not isinstance(item, CardFrame):
                return
            try:
                result = callback(item)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("on_frame callback failed for a read from %s", self.config.port)

    async def _run(self) -> None:
        backoff = self.config.reconnect_initial_s
        while True:
            try:
                stream, writer = await serial_asyncio.open_serial_connection(
                    url=self.config.port, baudrate=self.config.baudrate
                )
            except (serial.SerialException, OSError) as exc:
                first = backoff == self.config.reconnect_initial_s
                _log.log(
                    logging.WARNING if first else logging.DEBUG, "cannot open %s (%s); retrying", self.config.port, exc
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.config.reconnect_max_s)
                continue
            backoff = self.config.reconnect_initial_s
            self._parser.reset()
            self._connected = True
            self._connects += 1
            _log.info("RFID reader %s open", self.config.port)
            try:
                await self._read_until_gone(stream, _device_identity(writer))
            except (serial.SerialException, OSError, _PortGone) as exc:
                _log.warning("RFID reader %s lost (%s); reconnecting", self.config.port, exc)
            finally:
                self._connected = False
                self._disconnects += 1
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            await asyncio.sleep(backoff)

    async def _read_until_gone(self, stream: asyncio.StreamReader, identity: tuple[int, int, int]) -> None:
        # The read is awaited again as soon as a chunk is parsed, so a chunk is always taken out of the stream
        # before a following read error is stored on it (StreamReader raises that error ahead of buffered data).
        while True:
            try:
                data = await asyncio.wait_for(stream.read(self.config.read_size), self.config.presence_check_s)
            except TimeoutError:
                if _path_identity(self.config.port) != identity:
                    raise _PortGone(f"{self.config.port} removed or re-pointed") from None
                continue
            arrived = time.time_ns()
            if not data:
                raise _PortGone("end of file")
            for frame in self._parser.feed(data, arrived):
                if self._debouncer.accept(frame):
                    self._deliver(frame)


def _device_identity(writer: asyncio.StreamWriter) -> tuple[int, int, int]:
    st = os.fstat(writer.transport.get_extra_info("serial").fileno())
    return st.st_dev, st.st_ino, st.st_rdev


def _path_identity(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_rdev
