"""Pure RFID frame parsing: bytes off a serial port in, validated card frames out.

Two wire formats are understood (both by default; pin one with ``frame_formats`` when the hardware is known):

* ``em4100``: ``STX`` (0x02), 10 hex data characters, 2 hex characters holding the XOR of the 5 data bytes,
  optionally ``CR``/``LF``/``CR LF``, then ``ETX`` (0x03). The card number is the 10 data characters.
* ``line``: the card number (``line_min_chars``..``line_max_chars`` characters of the line alphabet) terminated
  by ``CR`` and/or ``LF``.

Every connection starts out of sync: until the parser has seen a frame start (``STX``) or a line break, bytes
are dropped, because the first bytes after a port opens may be the tail of a frame (a card resting on the
reader while the driver flushed the beginning). Call ``reset`` after every (re)connect. A line reader that
sends each number only once therefore loses the very first read after a (re)connect; readers that repeat while
the card rests (the common case) lose one repeat.

A line that holds any byte outside its alphabet is dropped whole, up to the next line break or ``STX``: the
tail of a damaged number must never pass for a card number. ``line_lengths`` pins the exact lengths a site's
cards have (a line reader whose numbers are 13 digits should never accept the 12 left by a dropped byte).
The price of dropping whole lines is that noise directly in front of a line-mode number, with no line break
between, spoils that number too. Memory is bounded: the parser holds at
most one partial frame (``max(line_max_chars, 14)`` bytes) whatever it is fed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "CardFrame",
    "Debouncer",
    "FrameFormat",
    "FrameParserStats",
    "RfidFrameParser",
    "em4100_checksum",
    "encode_em4100",
    "encode_line",
]

FrameFormat = Literal["em4100", "line"]

STX = 0x02
ETX = 0x03
CR = 0x0D
LF = 0x0A
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_ALNUM = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ALPHABETS = {"hex": _HEX, "digits": _DIGITS, "alnum": _ALNUM}
LineAlphabet = Literal["digits", "hex", "alnum"]
_EM_HEX_CHARS = 12  # 10 data + 2 checksum

_IDLE, _EM, _JUNK = 0, 1, 2


@dataclass(frozen=True, slots=True)
class CardFrame:
    """One valid card read: the number (upper-case), its wire format, and when the read completing it arrived."""

    card_number: str
    frame_format: FrameFormat
    arrived_at_ns: int


@dataclass(frozen=True, slots=True)
class FrameParserStats:
    """Counters of one parser: frames emitted, well-formed em4100 frames with a wrong checksum, bytes dropped."""

    frames: int
    bad_checksum: int
    garbage_bytes: int


def em4100_checksum(data_hex: str) -> str:
    """The 2 hex characters (upper-case) an em4100 frame carries for ``data_hex`` (10 hex characters)."""
    raw = bytes.fromhex(data_hex)
    if len(raw) != 5:
        raise ValueError(f"em4100 data is 10 hex characters, got {data_hex!r}")
    check = 0
    for b in raw:
        check ^= b
    return f"{check:02X}"


def encode_em4100(data_hex: str, *, crlf: bool = False, bad_checksum: bool = False) -> bytes:
    """The wire bytes of an em4100 frame for ``data_hex``; ``bad_checksum`` flips the checksum (for tests)."""
    check = em4100_checksum(data_hex)
    if bad_checksum:
        check = f"{int(check, 16) ^ 0x5A:02X}"
    tail = b"\r\n" if crlf else b""
    return bytes([STX]) + data_hex.upper().encode("ascii") + check.encode("ascii") + tail + bytes([ETX])


def encode_line(card_number: str, terminator: bytes = b"\r\n") -> bytes:
    """The wire bytes of a line-mode read: the number then ``terminator`` (CR, LF or CR LF)."""
    if terminator not in (b"\r", b"\n", b"\r\n"):
        raise ValueError(f"line terminator must be CR, LF or CR LF, got {terminator!r}")
    return card_number.encode("ascii") + terminator


class RfidFrameParser:
    """Incremental parser: ``feed`` it reads as they arrive; it returns the frames each read completed.

    Frames may be split across reads at any byte. A frame's ``arrived_at_ns`` is the stamp of the read that
    completed it (its ``ETX`` or line break). Bad checksums and garbage are counted and dropped, never emitted.
    """

    def __init__(
        self,
        *,
        frame_formats: Iterable[FrameFormat] = ("em4100", "line"),
        line_min_chars: int = 8,
        line_max_chars: int = 20,
        line_alphabet: LineAlphabet = "hex",
        line_lengths: Iterable[int] = (),
    ) -> None:
        formats = frozenset(frame_formats)
        if not formats or not formats <= {"em4100", "line"}:
            raise ValueError(f"frame_formats must be a non-empty subset of em4100/line, got {sorted(formats)}")
        if not 1 <= line_min_chars <= line_max_chars <= 64:
            raise ValueError("need 1 <= line_min_chars <= line_max_chars <= 64")
        if line_alphabet not in _ALPHABETS:
            raise ValueError(f"line_alphabet must be one of {sorted(_ALPHABETS)}, got {line_alphabet!r}")
        lengths = frozenset(line_lengths)
        if not lengths <= set(range(line_min_chars, line_max_chars + 1)):
            raise ValueError(f"line_lengths {sorted(lengths)} must lie within {line_min_chars}..{line_max_chars}")
        self._em = "em4100" in formats
        self._line = "line" in formats
        self._min = line_min_chars
        self._max = line_max_chars
        self._alphabet = _ALPHABETS[line_alphabet]
        self._lengths = lengths
        self._frames = 0
        self._bad_checksum = 0
        self._garbage = 0
        self.reset()

    def reset(self) -> None:
        """Forget any partial frame and resynchronise: call it on every (re)connect.

        After a reconnect the bytes before the gap cannot join those after it, and the first bytes may be the
        tail of a frame, so nothing is accepted until a frame start or a line break has been seen.
        """
        self._state = _JUNK
        self._token = bytearray()
        self._em_hex = bytearray()
        self._em_cr = False
        self._em_lf = False

    @property
    def buffered(self) -> int:
        """Bytes held for a partial frame (bounded whatever is fed)."""
        return len(self._token) + (1 + len(self._em_hex) + self._em_cr + self._em_lf if self._state == _EM else 0)

    def stats(self) -> FrameParserStats:
        """A snapshot of the counters."""
        return FrameParserStats(self._frames, self._bad_checksum, self._garbage)

    def feed(self, data: bytes, arrived_at_ns: int) -> list[CardFrame]:
        """Consume one read; return the valid frames it completed, in wire order."""
        out: list[CardFrame] = []
        for byte in data:
            self._step(byte, arrived_at_ns, out)
        return out

    def _step(self, byte: int, now: int, out: list[CardFrame]) -> None:
        if self._state == _EM:
            if self._em_step(byte, now, out):
                return
            # The em4100 frame broke on this byte: drop it and treat the byte as junk (or a new start).
            self._garbage += 1 + len(self._em_hex) + self._em_cr + self._em_lf
            self._state = _JUNK
        if self._state == _JUNK:
            if byte == STX and self._em:
                self._start_em()
            elif byte in (CR, LF):
                self._state = _IDLE
            else:
                self._garbage += 1
            return
        # _IDLE: accumulating a (possibly empty) line token.
        if byte == STX and self._em:
            self._garbage += len(self._token)
            self._token.clear()
            self._start_em()
        elif byte in (CR, LF):
            self._end_line(now, out)
        elif self._line and byte in self._alphabet:
            self._token.append(byte)
            if len(self._token) > self._max:
                self._garbage += len(self._token)
                self._token.clear()
                self._state = _JUNK
        else:
            self._garbage += len(self._token) + 1
            self._token.clear()
            self._state = _JUNK

    def _start_em(self) -> None:
        self._state = _EM
        self._em_hex.clear()
        self._em_cr = self._em_lf = False

    def _em_step(self, byte: int, now: int, out: list[CardFrame]) -> bool:
        """Advance the em4100 frame by one byte; False if the byte cannot belong to it."""
        if len(self._em_hex) < _EM_HEX_CHARS:
            if byte in _HEX and not (self._em_cr or self._em_lf):
                self._em_hex.append(byte)
                return True
            return False
        if byte == CR and not (self._em_cr or self._em_lf):
            self._em_cr = True
            return True
        if byte == LF and not self._em_lf:
            self._em_lf = True
            return True
        if byte != ETX:
            return False
        text = self._em_hex.decode("ascii").upper()
        self._state = _IDLE
        if em4100_checksum(text[:10]) == text[10:]:
            self._frames += 1
            out.append(CardFrame(text[:10], "em4100", now))
        else:
            self._bad_checksum += 1
        return True

    def _end_line(self, now: int, out: list[CardFrame]) -> None:
        token = self._token
        if not token:
            return
        if self._min <= len(token) <= self._max and (not self._lengths or len(token) in self._lengths):
            self._frames += 1
            out.append(CardFrame(token.decode("ascii").upper(), "line", now))
        else:
            self._garbage += len(token)
        token.clear()


class Debouncer:
    """Drops a card seen again within ``window_ns`` of its previous sighting (readers repeat while it rests).

    The window slides: every sighting, suppressed or not, restarts it, so a card left on the reader yields one
    read, and lifting it for longer than the window and presenting it again yields a new one. A sighting with
    an earlier stamp than the previous one (the clock stepped back) is let through.
    """

    def __init__(self, window_ns: int) -> None:
        if window_ns < 0:
            raise ValueError("window_ns must be >= 0")
        self.window_ns = window_ns
        self.suppressed = 0
        self._last_seen: dict[str, int] = {}

    def accept(self, frame: CardFrame) -> bool:
        """True if ``frame`` is a new read, False if it repeats a card seen within the window."""
        now = frame.arrived_at_ns
        last = self._last_seen.get(frame.card_number)
        self._last_seen[frame.card_number] = now
        if len(self._last_seen) > 1024:
            self._last_seen = {c: t for c, t in self._last_seen.items() if now - t < self.window_ns}
        if last is not None and 0 <= now - last < self.window_ns:
            self.suppressed += 1
            return False
        return True

    def filter(self, frames: Iterable[CardFrame]) -> list[CardFrame]:
        """The frames that ``accept`` lets through, in order."""
        return [f for f in frames if self.accept(f)]
