"""Regression tests, through a real pty, for false card reads after a (re)connect and for line-length limits.

Each case is a defect that was measured: the tail of a frame read as a card right after the port opened
(em4100 with CR LF read as a line card 10/10 times), and a 13-digit line read with one byte dropped accepted as
a 12-digit card (49/50) because the kiosk config could not pin the length.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest

from edge_agent.agent import load_config
from edge_agent.sensors import (
    CardFrame,
    RfidEmulator,
    RfidEmulatorConfig,
    RfidFrameParser,
    RfidReader,
    RfidReaderConfig,
    encode_em4100,
    encode_line,
)

pytestmark = pytest.mark.timeout(60)

EM_CARDS = tuple(f"{0x73F658D4A8 + i * 0x2468AC:010X}" for i in range(10))
LINE_CARDS = tuple(f"{4_400_000_000_000 + i * 7919:013d}" for i in range(50))


def reader_config(link: Path, **overrides: object) -> RfidReaderConfig:
    params: dict[str, object] = {
        "port": str(link),
        "debounce_ms": 0,
        "reconnect_initial_s": 0.02,
        "reconnect_max_s": 0.1,
        "presence_check_s": 0.05,
    }
    params.update(overrides)
    return RfidReaderConfig(**params)  # type: ignore[arg-type]


async def collect(reader: RfidReader, sink: list[CardFrame]) -> None:
    async for frame in reader.frames():
        sink.append(frame)


async def wait_connects(reader: RfidReader, n: int) -> None:
    for _ in range(500):
        if reader.stats().connects >= n and reader.connected:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"reader did not connect {n} times")


async def reconnect_cycles(link: Path, reader: RfidReader, payloads: list[bytes]) -> list[CardFrame]:
    """Plug, wait for the reader to open the port, send one payload, drain, unplug; once per payload."""
    got: list[CardFrame] = []
    emulator = RfidEmulator(RfidEmulatorConfig(link=link))
    async with reader:
        consumer = asyncio.create_task(collect(reader, got))
        for i, payload in enumerate(payloads, start=1):
            await emulator.plug()
            assert await emulator.wait_for_reader(5.0)
            await wait_connects(reader, i)
            assert await emulator.write(payload)
            assert await emulator.drain(2.0)
            await asyncio.sleep(0.03)
            await emulator.unplug()
    await consumer
    return got


@pytest.mark.parametrize("formats", [("em4100", "line"), ("em4100",)])
async def test_em4100_tails_right_after_every_reconnect_are_never_cards(tmp_path: Path, formats: tuple[str]) -> None:
    # A card rests on the reader, repeating its frame; the port opens in the middle of one. The tail (8..12 hex
    # characters, CR LF, ETX) looks exactly like a line-mode read; the next whole frame is the real card.
    link = tmp_path / "rfid0"
    payloads = []
    for i, card in enumerate(EM_CARDS):
        frame = encode_em4100(card, crlf=True)
        payloads.append(frame[1 + i % 5 :] + frame)
    reader = RfidReader(reader_config(link, frame_formats=formats))
    got = await reconnect_cycles(link, reader, payloads)
    assert [(f.card_number, f.frame_format) for f in got] == [(c, "em4100") for c in EM_CARDS]
    assert reader.stats().connects == len(EM_CARDS)


async def test_line_tails_right_after_every_reconnect_are_never_cards(tmp_path: Path) -> None:
    link = tmp_path / "rfid0"
    cards = LINE_CARDS[:10]
    payloads = [encode_line(c)[1 + i % 5 :] + encode_line(c) for i, c in enumerate(cards)]  # tails of 8..12 digits
    reader = RfidReader(reader_config(link, frame_formats=("line",)))
    got = await reconnect_cycles(link, reader, payloads)
    assert [f.card_number for f in got] == list(cards)


async def test_a_dropped_byte_never_yields_a_shorter_card_when_lengths_are_pinned(tmp_path: Path) -> None:
    # 50 line reads, each followed by a copy with one byte dropped: only the intact 13-digit reads may pass.
    rng = random.Random(49)
    stream = bytearray(b"\r\n")
    for card in LINE_CARDS:
        stream += encode_line(card)
        pos = rng.randrange(13)
        stream += encode_line(card[:pos] + card[pos + 1 :])
    link = tmp_path / "rfid0"
    reader = RfidReader(reader_config(link, frame_formats=("line",), line_lengths=(13,), line_alphabet="digits"))
    got = await reconnect_cycles(link, reader, [bytes(stream)])
    assert [f.card_number for f in got] == list(LINE_CARDS)
    # Without the pin the same bytes invent 50 cards: the reason the limit is a setting.
    loose = RfidFrameParser(frame_formats=["line"])
    assert len(loose.feed(bytes(stream), 0)) == 100


def test_alphabets_and_exact_lengths() -> None:
    parser = RfidFrameParser(frame_formats=["line"], line_lengths=(10, 13), line_alphabet="digits")
    data = b"\n1234567890\n12345678901\n1234567890123\n123456789A\n"
    assert [f.card_number for f in parser.feed(data, 0)] == ["1234567890", "1234567890123"]
    alnum = RfidFrameParser(frame_formats=["line"], line_alphabet="alnum")
    assert [f.card_number for f in alnum.feed(b"\nPAT00042xz\n", 0)] == ["PAT00042XZ"]
    with pytest.raises(ValueError, match="line_lengths"):
        RfidFrameParser(line_lengths=(30,))
    with pytest.raises(ValueError, match="line_alphabet"):
        RfidFrameParser(line_alphabet="base64")  # type: ignore[arg-type]


def test_rfid_limits_come_from_the_kiosk_config(tmp_path: Path) -> None:
    path = tmp_path / "kiosk.toml"
    path.write_text(
        '[kiosk]\nid = "k1"\nhospital = "h1"\n'
        '[rfid]\nformats = ["line"]\nline_lengths = [13]\nline_alphabet = "digits"\nline_max_chars = 16\n'
    )
    rfid = load_config(path).rfid
    assert (rfid.formats, rfid.line_lengths, rfid.line_alphabet, rfid.line_max_chars) == (["line"], [13], "digits", 16)
    path.write_text('[kiosk]\nid = "k1"\nhospital = "h1"\n[rfid]\nline_lengths = [40]\n')
    with pytest.raises(ValueError, match=r"\[rfid\].*line_lengths"):
        load_config(path)
