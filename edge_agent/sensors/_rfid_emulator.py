"""A software RFID reader on a pseudo-terminal, for tests and demos without the hardware.

The emulator owns a pty and points a symlink the caller chooses at its slave side, so a reader configured with
that path cannot tell it from a USB serial reader: unplugging removes the link and closes the pty (the open port
sees a hang-up), replugging makes a new pty and re-points the link.

It knows when a reader has opened the port: the master is in packet mode, and pyserial flushes the input queue
when it opens a port, which the master sees as ``TIOCPKT_FLUSHREAD``. Bytes written before that are flushed
away by the opening reader, as on real hardware; each card in the ground truth says whether a reader was
attached when it went out. Before unplugging, the emulator waits (briefly) until the reader has drained what
was sent, so "sent while plugged and attached" means "reached the reader".
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import random
import struct
import termios
import time
import tty
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from edge_agent.sensors._rfid_frames import FrameFormat, encode_em4100, encode_line

__all__ = ["EmittedCard", "RfidEmulator", "RfidEmulatorConfig"]

_log = logging.getLogger(__name__)

# Glitch bytes: never STX and never hex characters, so noise cannot complete or fake a frame of either format.
_JUNK = bytes(b for b in range(256) if b != 0x02 and b not in b"0123456789abcdefABCDEF")
_JUNK_NO_BREAK = bytes(b for b in _JUNK if b not in (0x0D, 0x0A))


@dataclass(frozen=True, kw_only=True)
class RfidEmulatorConfig:
    """What the emulated reader sends. Probabilities are per frame; all randomness comes from ``seed``."""

    link: Path
    frame_format: FrameFormat = "em4100"
    #: Card numbers, used in turn; empty: random ones (10 hex characters, or ``line_chars`` digits).
    cards: tuple[str, ...] = ()
    line_chars: int = 13
    count: int = 10
    #: Taps (card presentations) per second.
    rate_hz: float = 5.0
    #: Frames per tap: readers repeat while a card rests on them.
    repeats: int = 1
    repeat_interval_s: float = 0.1
    #: Probability of a glitch (1..16 junk bytes; in line mode closed by a line break) before a frame.
    noise: float = 0.0
    #: Probability that a frame goes out in 2..4 writes with 1..15 ms between them.
    partial: float = 0.0
    #: em4100 only: probability that a misread copy with a wrong checksum precedes a frame.
    bad_checksum: float = 0.0
    #: Unplug just before this tap (0-based), for ``unplug_for_s`` seconds; None: never.
    unplug_after: int | None = None
    unplug_for_s: float = 1.0
    #: Pull the cable halfway through a frame (that card is lost, and not in the ground truth).
    unplug_mid_frame: bool = False
    #: After (re)plugging, wait up to this long for a reader to open the port; None: do not wait.
    wait_for_reader_s: float | None = 5.0
    line_terminator: bytes = b"\r\n"
    em4100_crlf: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.count < 0 or self.rate_hz <= 0 or self.repeats < 1 or self.unplug_for_s < 0:
            raise ValueError("need count >= 0, rate_hz > 0, repeats >= 1, unplug_for_s >= 0")
        if not all(0.0 <= p <= 1.0 for p in (self.noise, self.partial, self.bad_checksum)):
            raise ValueError("noise, partial and bad_checksum are probabilities in [0, 1]")
        if self.line_terminator not in (b"\r", b"\n", b"\r\n"):
            raise ValueError("line_terminator must be CR, LF or CR LF")
        hex_digits = set("0123456789abcdefABCDEF")
        for card in self.cards:
            ok = (len(card) == 10 and set(card) <= hex_digits) if self.frame_format == "em4100" else card.isalnum()
            if not (ok and card.isascii()):
                raise ValueError(f"{card!r} is not a valid {self.frame_format} card number")


@dataclass(frozen=True, slots=True)
class EmittedCard:
    """Ground truth: a valid frame for ``card_number`` went out, completely, at ``sent_at_ns`` (wall clock).

    ``attached`` says a reader had the port open when the frame started; a frame sent with none attached is
    flushed away when one opens. ``synced`` says the reader had been sent a frame start or a line break since it
    opened the port (an em4100 frame starts with one): a reader resynchronises after every open, so only frames
    both attached and synced must be read.
    """

    card_number: str
    frame_format: FrameFormat
    sent_at_ns: int
    tap: int
    attached: bool
    synced: bool = True


class RfidEmulator:
    """An RFID reader on a pty reachable at ``config.link``; ``run()`` sends the configured taps."""

    def __init__(self, config: RfidEmulatorConfig) -> None:
        self.config = config
        self.sent: list[EmittedCard] = []
        self._rng = random.Random(config.seed)
        self._master: int | None = None
        self._slave: int | None = None
        self._slave_path = ""
        self._attached = False
        self._synced = False

    @property
    def plugged(self) -> bool:
        """True while the pty exists and the link points at it."""
        return self._master is not None

    @property
    def reader_attached(self) -> bool:
        """True once a reader has opened the port since the last plug."""
        self._poll_packets()
        return self._attached

    async def plug(self) -> None:
        """Create a fresh pty and point the link at it."""
        if self.plugged:
            return
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation, whatever the reader does later
        fcntl.ioctl(master, termios.TIOCPKT, struct.pack("i", 1))
        os.set_blocking(master, False)
        self._master, self._slave, self._slave_path = master, slave, os.ttyname(slave)
        self._attached = False
        self._synced = False
        link = self.config.link
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self._slave_path)
        tmp.replace(link)
        _log.info("RFID emulator plugged: %s -> %s", link, self._slave_path)

    async def unplug(self, *, drain_s: float = 1.0) -> None:
        """Wait (up to ``drain_s``) for the reader to take what was sent, then remove the link and the pty."""
        if self._master is None or self._slave is None:
            return
        await self.drain(drain_s)
        with contextlib.suppress(OSError):
            if os.readlink(self.config.link) == self._slave_path:
                self.config.link.unlink()
        os.close(self._master)
        os.close(self._slave)
        self._master = self._slave = None
        _log.info("RFID emulator unplugged: %s", self.config.link)

    async def wait_for_reader(self, timeout_s: float) -> bool:
        """Wait until a reader opens the port (or ``timeout_s`` passes); True if one did."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not self.reader_attached:
            if not self.plugged or asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the reader has read everything written; True if it did within ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        await asyncio.sleep(0.02)  # bytes written to the master reach the slave's queue asynchronously
        quiet = 0
        while quiet < 2:
            if self._slave is None or loop.time() >= deadline:
                return False
            waiting = struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"))[0]
            quiet = quiet + 1 if waiting == 0 else 0
            await asyncio.sleep(0.01)
        return True

    async def write(self, data: bytes) -> bool:
        """Put ``data`` on the wire; False if the port is unplugged or its buffer overflowed (bytes lost)."""
        if self._master is None:
            return False
        attached = self.reader_attached
        try:
            written = os.write(self._master, data)
        except BlockingIOError:
            return False
        if attached and any(b in data[:written] for b in b"\r\n\x02"):
            self._synced = True
        return written == len(data)

    async def run(self) -> list[EmittedCard]:
        """Send ``count`` taps at ``rate_hz`` (plugging first if needed); return the ground truth."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        await self.plug()
        await self._await_reader()
        start = loop.time()
        for tap in range(cfg.count):
            await asyncio.sleep(max(0.0, start + tap / cfg.rate_hz - loop.time()))
            card = self._card(tap)
            if cfg.unplug_after is not None and tap == cfg.unplug_after:
                if cfg.unplug_mid_frame:
                    frame = self._frame(card)
                    await self.write(frame[: len(frame) // 2])  # lost; the card is presented again later
                await self.unplug()
                await asyncio.sleep(cfg.unplug_for_s)
                await self.plug()
                await self._await_reader()
                start = loop.time() - tap / cfg.rate_hz
            for repeat in range(cfg.repeats):
                if repeat:
                    await asyncio.sleep(cfg.repeat_interval_s)
                await self._send_frame(card, tap)
        return self.sent

    async def close(self) -> None:
        """Unplug if plugged."""
        await self.unplug()

    async def __aenter__(self) -> RfidEmulator:
        await self.plug()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _await_reader(self) -> None:
        if self.config.wait_for_reader_s is not None and not await self.wait_for_reader(self.config.wait_for_reader_s):
            _log.warning("no reader opened %s within %.1f s", self.config.link, self.config.wait_for_reader_s)

    async def _send_frame(self, card: str, tap: int) -> None:
        cfg, rng = self.config, self._rng
        if rng.random() < cfg.noise:
            await self.write(self._glitch())
        if cfg.frame_format == "em4100" and rng.random() < cfg.bad_checksum:
            await self.write(encode_em4100(card, crlf=cfg.em4100_crlf, bad_checksum=True))
        attached = self.reader_attached
        synced = cfg.frame_format == "em4100" or self._synced
        frame = self._frame(card)
        pieces = [frame]
        if rng.random() < cfg.partial:
            cuts = sorted(rng.sample(range(1, len(frame)), rng.randint(1, 3)))
            pieces = [frame[a:b] for a, b in zip([0, *cuts], [*cuts, len(frame)], strict=True)]
        complete = True
        for i, piece in enumerate(pieces):
            if i:
                await asyncio.sleep(rng.uniform(0.001, 0.015))
            complete = await self.write(piece) and complete
        if complete:
            sent = EmittedCard(card, cfg.frame_format, time.time_ns(), tap, attached, attached and synced)
            self.sent.append(sent)
            _log.debug("sent %s", sent)

    def _frame(self, card: str) -> bytes:
        if self.config.frame_format == "em4100":
            return encode_em4100(card, crlf=self.config.em4100_crlf)
        return encode_line(card, self.config.line_terminator)

    def _card(self, tap: int) -> str:
        if self.config.cards:
            return self.config.cards[tap % len(self.config.cards)]
        if self.config.frame_format == "em4100":
            return self._rng.randbytes(5).hex().upper()
        return "".join(self._rng.choice("0123456789") for _ in range(self.config.line_chars))

    def _glitch(self) -> bytes:
        n = self._rng.randint(1, 16)
        if self.config.frame_format == "line":
            body = bytes(self._rng.choice(_JUNK_NO_BREAK) for _ in range(n))
            return body + self.config.line_terminator
        return bytes(self._rng.choice(_JUNK) for _ in range(n))

    def _poll_packets(self) -> None:
        while self._master is not None:
            try:
                packet = os.read(self._master, 256)
            except (BlockingIOError, OSError):
                return
            if packet and packet[0] & termios.TIOCPKT_FLUSHREAD:
                self._attached = True
                self._synced = False
