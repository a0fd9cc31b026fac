"""The async RFID reader against the emulator on a real pseudo-terminal: reads, unplug/replug, re-pointing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from edge_agent.sensors import (
    CardFrame,
    EmittedCard,
    RfidEmulator,
    RfidEmulatorConfig,
    RfidReader,
    RfidReaderConfig,
)

pytestmark = pytest.mark.timeout(30)

EM_CARDS = tuple(f"{0x1A2B3C0000 + i * 0x1357:010X}" for i in range(40))
LINE_CARDS = tuple(f"{4_400_000_000_000 + i * 7919:013d}" for i in range(40))


def reader_config(link: Path, **overrides: object) -> RfidReaderConfig:
    params: dict[str, object] = {
        "port": str(link),
        "debounce_ms": 0,
        "reconnect_initial_s": 0.02,
        "reconnect_max_s": 0.2,
        "presence_check_s": 0.05,
    }
    params.update(overrides)
    return RfidReaderConfig(**params)  # type: ignore[arg-type]


async def collect(reader: RfidReader, sink: list[CardFrame]) -> None:
    async for frame in reader.frames():
        sink.append(frame)


async def settle(got: list[CardFrame], expected: int, timeout_s: float = 5.0) -> None:
    """Wait until ``expected`` frames are in (the bytes already reached the reader: the emulator drained)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(got) < expected and loop.time() < deadline:  # noqa: ASYNC110 - polling a plain list
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # room for an extra (invented) frame to show up


async def run_session(emulator: RfidEmulator, reader: RfidReader) -> tuple[list[EmittedCard], list[CardFrame]]:
    got: list[CardFrame] = []
    async with reader:
        consumer = asyncio.create_task(collect(reader, got))
        sent = await emulator.run()
        await emulator.unplug()  # waits until the reader has taken every byte
        await settle(got, len([s for s in sent if s.synced]))
    await consumer
    return sent, got


def assert_exact(sent: list[EmittedCard], got: list[CardFrame]) -> None:
    assert sent, "the emulator sent nothing"
    assert all(s.attached for s in sent)
    readable = [(s.card_number, s.frame_format) for s in sent if s.synced]
    assert [(f.card_number, f.frame_format) for f in got] == readable


@pytest.mark.parametrize("frame_format", ["em4100", "line"])
async def test_reads_every_valid_frame_through_noise_splits_and_bad_checksums(
    tmp_path: Path, frame_format: str
) -> None:
    link = tmp_path / "rfid0"
    emulator = RfidEmulator(
        RfidEmulatorConfig(
            link=link,
            frame_format=frame_format,  # type: ignore[arg-type]
            cards=EM_CARDS if frame_format == "em4100" else LINE_CARDS,
            count=25,
            rate_hz=100.0,
            noise=0.5,
            partial=0.5,
            bad_checksum=0.3,
            seed=11,
        )
    )
    reader = RfidReader(reader_config(link))  # started before the port exists: it retries until it appears
    sent, got = await run_session(emulator, reader)
    assert_exact(sent, got)
    stats = reader.stats()
    assert stats.frames == len([s for s in sent if s.synced])
    assert stats.garbage_bytes > 0
    if frame_format == "em4100":
        assert stats.bad_checksum > 0


@pytest.mark.parametrize("mid_frame", [False, True])
async def test_unplug_and_replug_mid_stream_loses_nothing_and_invents_nothing(tmp_path: Path, mid_frame: bool) -> None:
    link = tmp_path / "rfid0"
    emulator = RfidEmulator(
        RfidEmulatorConfig(
            link=link,
            frame_format="line",
            cards=LINE_CARDS,
            count=20,
            rate_hz=100.0,
            noise=0.3,
            partial=0.3,
            unplug_after=10,
            unplug_for_s=0.3,
            unplug_mid_frame=mid_frame,
            seed=5,
        )
    )
    reader = RfidReader(reader_config(link))
    sent, got = await run_session(emulator, reader)
    assert_exact(sent, got)
    assert len(sent) == 20
    stats = reader.stats()
    assert stats.connects == 2
    assert stats.disconnects == 2  # the unplug, and the final one
    assert not stats.connected


async def test_a_resting_card_is_one_read(tmp_path: Path) -> None:
    link = tmp_path / "rfid0"
    emulator = RfidEmulator(
        RfidEmulatorConfig(
            link=link, cards=EM_CARDS[:3], count=6, rate_hz=10.0, repeats=4, repeat_interval_s=0.01, seed=2
        )
    )
    reader = RfidReader(reader_config(link, debounce_ms=1000))
    got: list[CardFrame] = []
    async with reader:
        consumer = asyncio.create_task(collect(reader, got))
        sent = await emulator.run()
        await emulator.unplug()
        await settle(got, 3)
    await consumer
    assert len(sent) == 24
    # Taps 3..5 bring back cards 0..2 within a second of their last sighting: still the same presentation.
    assert [f.card_number for f in got] == list(EM_CARDS[:3])
    assert reader.stats().debounced == 21


async def test_a_re_pointed_path_is_followed_without_a_hang_up(tmp_path: Path) -> None:
    link = tmp_path / "rfid0"
    first = RfidEmulator(RfidEmulatorConfig(link=link, cards=EM_CARDS[:3], count=3, rate_hz=100.0))
    second = RfidEmulator(RfidEmulatorConfig(link=link, cards=EM_CARDS[3:6], count=3, rate_hz=100.0))
    got: list[CardFrame] = []
    reader = RfidReader(reader_config(link))
    async with reader:
        consumer = asyncio.create_task(collect(reader, got))
        sent = await first.run()
        await first.drain(2.0)
        sent += await second.run()  # re-points the link; the first pty stays open and silent
        await second.unplug()
        await first.unplug()  # the link is no longer its own: it leaves it alone
        await settle(got, 6)
    await consumer
    assert_exact(sent, got)
    assert reader.stats().connects == 2


async def test_on_frame_callback_and_stop_semantics(tmp_path: Path) -> None:
    link = tmp_path / "rfid0"
    emulator = RfidEmulator(RfidEmulatorConfig(link=link, cards=EM_CARDS[:5], count=5, rate_hz=100.0))
    got: list[CardFrame] = []

    async def on_frame(frame: CardFrame) -> None:
        await asyncio.sleep(0)
        got.append(frame)

    reader = RfidReader(reader_config(link), on_frame=on_frame)
    await reader.stop()  # before start: a no-op
    reader = RfidReader(reader_config(link), on_frame=on_frame)
    await reader.start()
    with pytest.raises(RuntimeError, match="twice"):
        await reader.start()
    with pytest.raises(RuntimeError, match="on_frame"):
        await anext(reader.frames())
    sent = await emulator.run()
    await emulator.unplug()
    await settle(got, 5)
    await reader.stop()
    await reader.stop()
    assert [f.card_number for f in got] == [s.card_number for s in sent]


async def test_a_crashing_reader_fails_loudly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    link = tmp_path / "rfid0"
    async with RfidEmulator(RfidEmulatorConfig(link=link)):
        reader = RfidReader(reader_config(link, baudrate=-1))  # a configuration error, not a lost port
        with caplog.at_level(logging.CRITICAL, logger="edge_agent.sensors._rfid_reader"):
            async with reader:
                with pytest.raises(RuntimeError, match="crashed"):
                    await asyncio.wait_for(anext(reader.frames()), 5)
        assert any("crashed" in r.getMessage() for r in caplog.records)
