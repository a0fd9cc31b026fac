"""Frame sources: image folder and video file in order with increasing capture stamps, runtime fps, errors."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.vision import (
    DeviceSource,
    Frame,
    FrameSourceError,
    ImageFolderSource,
    SourceNotFoundError,
    VideoFileSource,
    face_sources,
    open_source,
    render_clip,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    """12 synthetic live frames, each stamped with its number in the top-left corner (to check the order)."""
    clip = render_clip("live", face_sources()[0], np.random.default_rng(3), frames=12, width=160, height=120)
    for i, image in enumerate(clip):
        image[:8, :8] = 20 * i
    return clip


@pytest.fixture
def folder(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    for i, image in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"frame_{i:03d}.png"), image)
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


@pytest.fixture
def video(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (160, 120))
    assert writer.isOpened()
    for image in frames:
        writer.write(image)
    writer.release()
    return path


def marker(frame: Frame) -> int:
    return round(float(frame.image[:8, :8].mean()) / 20)


async def collect(spec: str, **kwargs: object) -> list[Frame]:
    async with open_source(spec, **kwargs) as source:  # type: ignore[arg-type]
        return [frame async for frame in source]


async def test_image_folder_plays_in_order_with_increasing_stamps(folder: Path) -> None:
    got = await collect(str(folder), fps=200.0)
    assert [f.index for f in got] == list(range(12))
    assert [marker(f) for f in got] == list(range(12))
    stamps = [f.captured_at_ns for f in got]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert abs(stamps[-1] - time.time_ns()) < 5e9
    assert got[0].source == f"images:{folder}" and got[0].image.dtype == np.uint8


async def test_video_file_plays_in_order_at_its_own_rate(video: Path) -> None:
    source = open_source(str(video))
    assert isinstance(source, VideoFileSource)
    async with source:
        assert source.fps == pytest.approx(25.0)
        got = [frame async for frame in source]
    assert [f.index for f in got] == list(range(12))
    assert [marker(f) for f in got] == list(range(12))  # MJPG is lossy, the markers survive
    stamps = [f.captured_at_ns for f in got]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert (stamps[-1] - stamps[0]) / 11 == pytest.approx(40e6, rel=0.3)


async def test_fps_change_at_runtime_takes_effect(folder: Path) -> None:
    source = ImageFolderSource(folder, fps=50.0)
    stamps = []
    async with source:
        async for frame in source:
            stamps.append(frame.captured_at_ns)
            if frame.index == 5:
                source.set_fps(10.0)
            if frame.index == 9:
                break
    fast = np.diff(stamps[:6]).mean() / 1e6
    slow = np.diff(stamps[6:]).mean() / 1e6
    assert fast < 40 and 80 < slow < 140, (fast, slow)


async def test_fps_change_wakes_a_waiting_read(folder: Path) -> None:
    async with ImageFolderSource(folder, fps=0.5) as source:
        await source.read()
        pending = asyncio.ensure_future(source.read())  # due in 2 s
        await asyncio.sleep(0.05)
        started = time.monotonic()
        source.set_fps(100.0)
        frame = await asyncio.wait_for(pending, 1.0)
        assert frame is not None and frame.index == 1
        assert time.monotonic() - started < 0.5


async def test_loop_restarts_a_folder(folder: Path) -> None:
    async with open_source(str(folder), fps=500.0, loop=True) as source:
        got = [await source.read() for _ in range(15)]
    assert [marker(f) for f in got if f is not None] == [*range(12), 0, 1, 2]
    assert [f.index for f in got if f is not None] == list(range(15))


async def test_missing_paths_and_devices_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceNotFoundError, match="no such device, video file or image folder"):
        open_source(str(tmp_path / "missing.avi"))
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError, for callers that catch those
        VideoFileSource(tmp_path / "missing.avi")
    with pytest.raises(SourceNotFoundError):
        ImageFolderSource(tmp_path / "nope")
    device = open_source("device:97")
    assert isinstance(device, DeviceSource) and device.index == 97
    assert isinstance(open_source("3"), DeviceSource)
    with pytest.raises(FrameSourceError, match="camera device 97"):
        await device.start()


async def test_empty_folder_unreadable_video_and_bad_fps(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FrameSourceError, match="holds no images"):
        await open_source(str(empty)).start()
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(FrameSourceError, match="could not be opened"):
        await open_source(str(bad)).start()
    with pytest.raises(ValueError, match="fps"):
        open_source(str(empty), fps=0.0)


async def test_stop_during_a_paced_wait_ends_the_read(folder: Path) -> None:
    source = ImageFolderSource(folder, fps=0.5)
    await source.start()
    assert await source.read() is not None
    pending = asyncio.ensure_future(source.read())  # due in 2 s
    await asyncio.sleep(0.05)
    await source.stop()
    assert await asyncio.wait_for(pending, 1.0) is None
    assert not source.started


async def test_capture_is_stamped_at_grab_before_decoding(video: Path, folder: Path) -> None:
    # The stamp used to be taken after read() returned (grab + decode); now it is taken when the grab returns,
    # and the hand-over time is kept beside it for the online clock-offset estimate.
    got = await collect(str(video), fps=200.0)
    assert len(got) == 12
    assert all(f.received_at_ns is not None and f.captured_at_ns <= f.received_at_ns for f in got)
    assert any(f.received_at_ns is not None and f.captured_at_ns < f.received_at_ns for f in got)
    from_folder = await collect(str(folder), fps=200.0)
    assert all(f.captured_at_ns == f.received_at_ns for f in from_folder)  # no earlier stamp exists there


def test_driver_timestamps_are_mapped_to_the_wall_clock() -> None:
    from edge_agent.vision._source_kinds import driver_stamp_to_wall

    mono, wall = 5_000_000_000_000, 1_700_000_000_000_000_000
    # A V4L2 buffer stamp 12 ms before the grab returned, on the monotonic clock.
    assert driver_stamp_to_wall((mono - 12_000_000) / 1e6, mono, wall) == wall - 12_000_000
    assert driver_stamp_to_wall(0.0, mono, wall) == wall  # no stamp
    assert driver_stamp_to_wall(40.0, mono, wall) == wall  # a position in a stream, not a monotonic stamp
    assert driver_stamp_to_wall((mono + 1_000_000) / 1e6, mono, wall) == wall  # in the future: not plausible
