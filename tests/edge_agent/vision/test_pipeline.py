"""The serving pipeline: the shipped demo model on generated clips, history resets, async, metadata checks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.fusion import LivenessResult
from edge_agent.inference import EngineInfo, InferenceEngine, Tensor, run_in_thread
from edge_agent.vision import (
    CHANNELS,
    DEMO_MODEL,
    FaceSource,
    Frame,
    LivenessPipeline,
    face_sources,
    load_model_info,
    open_source,
    render_clip,
)

pytestmark = pytest.mark.timeout(90)
S = 127 / 128


class RecordingEngine:
    """A stand-in engine: records what it is fed and answers S (127/128, exact in float32)."""

    def __init__(self) -> None:
        self.fed: list[np.ndarray] = []
        self._info = EngineInfo("fake", Path("fake.onnx"), ("input",), ("live_prob",), "cpu", "fp32")

    @property
    def info(self) -> EngineInfo:
        return self._info

    def run(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        self.fed.append(np.asarray(inputs["input"]))
        return {"live_prob": np.full((len(inputs["input"]), 1), S, np.float32)}

    async def run_async(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return await run_in_thread(self, inputs)

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def source() -> FaceSource:
    return face_sources()[0]


def as_frames(images: list[np.ndarray], start: int = 0) -> list[Frame]:
    return [Frame(img, 1_000_000_000 + 66_000_000 * (start + i), start + i, "test") for i, img in enumerate(images)]


def test_fake_engine_sees_the_model_input_after_k_frames(source: FaceSource) -> None:
    engine = RecordingEngine()
    assert isinstance(engine, InferenceEngine)
    pipe = LivenessPipeline(engine, history=4, model_version="fake-1")
    obs = [pipe.process(f) for f in as_frames(render_clip("live", source, np.random.default_rng(1), frames=6))]
    assert all(o.face_found for o in obs)
    assert [o.history_len for o in obs] == [1, 2, 3, 4, 4, 4]
    assert [o.live_score for o in obs] == [None, None, None, S, S, S]
    assert [x.shape for x in engine.fed] == [(1, len(CHANNELS), 64, 64)] * 3
    last = obs[-1]
    assert last.model_version == "fake-1" and last.frame_index == 5 and last.captured_at_ns == 1_330_000_000
    assert last.latency_ns >= last.detect_ns > 0 and last.infer_ns > 0
    assert last.is_live(0.98) and not last.is_live(S)
    assert last.to_result() == LivenessResult(1_330_000_000, True, S)
    assert obs[0].to_result() == LivenessResult(1_000_000_000, True, None)  # "no score yet" is not 0.0


def test_history_resets_when_the_face_disappears_or_jumps(source: FaceSource) -> None:
    pipe = LivenessPipeline(RecordingEngine(), history=3, max_missed=0)
    clip = render_clip("live", source, np.random.default_rng(2), frames=10)
    blank = np.full_like(clip[0], 100)
    jumped = np.full_like(clip[0], 100)
    jumped[:, 110:] = clip[6][:, :-110]  # the same face, 110 px to the right: a new track
    frames = as_frames([*clip[:4], blank, *clip[5:8], jumped])
    obs = [pipe.process(f) for f in frames]
    assert [o.history_len for o in obs] == [1, 2, 3, 3, 0, 1, 2, 3, 1]
    assert not obs[4].face_found and obs[4].live_score is None and obs[4].face_box is None
    assert obs[5].live_score is None, "a new track scores only once its history is full again"
    assert obs[8].face_found and obs[8].live_score is None
    assert pipe.history.resets == 2


def test_the_track_survives_short_detector_misses(source: FaceSource) -> None:
    # One missed detection used to reset the history: K more frames before the next score.
    clip = render_clip("live", source, np.random.default_rng(2), frames=10)
    blank = np.full_like(clip[0], 100)
    frames = as_frames([*clip[:4], blank, *clip[5:7], blank, blank, *clip[9:10]])
    pipe = LivenessPipeline(RecordingEngine(), history=3, max_missed=2)
    obs = [pipe.process(f) for f in frames]
    assert [o.face_found for o in obs] == [True] * 4 + [False] + [True] * 2 + [False] * 2 + [True]
    assert [o.live_score for o in obs] == [None, None, S, S, None, S, S, None, None, S]
    assert pipe.history.resets == 0
    pipe = LivenessPipeline(RecordingEngine(), history=3, max_missed=1)
    obs = [pipe.process(f) for f in frames]
    assert obs[9].live_score is None and pipe.history.resets == 1  # two misses in a row exceed max_missed=1


async def test_async_matches_sync_and_reads_a_source(tmp_path: Path, source: FaceSource) -> None:
    clip = render_clip("live", source, np.random.default_rng(3), frames=6)
    for i, image in enumerate(clip):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), image)
    sync = LivenessPipeline.from_model(DEMO_MODEL)
    want = [sync.process(f).live_score for f in as_frames(clip)]
    pipe = LivenessPipeline.from_model(DEMO_MODEL)
    got = []
    async with open_source(str(tmp_path), fps=100.0) as frames:
        async for frame in frames:
            got.append((await pipe.process_async(frame)).live_score)
    assert got[:3] == [None] * 3 and None not in got[3:]
    np.testing.assert_allclose(np.array(got[3:], float), np.array(want[3:], float), atol=1e-6)


def test_demo_model_separates_generated_live_and_spoof_clips(source: FaceSource) -> None:
    """Sanity only: generated clips (seeds unlike the demo model's training set), scored by the demo model."""
    pipe = LivenessPipeline.from_model(DEMO_MODEL)
    assert pipe.threshold == 0.98
    rng = np.random.default_rng(2024)
    scores: dict[str, list[float]] = {"live": [], "print": [], "replay": []}
    for kind in ("live", "print", "replay", "live", "print", "replay"):
        pipe.reset()
        for frame in as_frames(render_clip(kind, source, rng, frames=8)):  # type: ignore[arg-type]
            score = pipe.process(frame).live_score
            if score is not None:
                scores[kind].append(score)
    live = np.array(scores["live"])
    spoof = np.array(scores["print"] + scores["replay"])
    assert len(live) >= 8 and len(spoof) >= 16
    assert np.mean(live > pipe.threshold) >= 0.6, live
    assert np.mean(spoof <= pipe.threshold) >= 0.8, spoof


def test_demo_model_rejects_a_motionless_photo(grace_hopper: np.ndarray) -> None:
    """The temporal cue at work: the real photograph, perfectly still (as a photo on a stand or an injected
    frozen image would be), has no micro-motion and is not live, although its texture is clean."""
    pipe = LivenessPipeline.from_model(DEMO_MODEL)
    still = np.ascontiguousarray(cv2.resize(grace_hopper, (320, 375))[60:300])
    scores = [pipe.process(f).live_score for f in as_frames([still] * 6)]
    assert scores[:3] == [None] * 3
    assert all(s is not None and s <= pipe.threshold for s in scores[3:]), scores


def test_demo_model_metadata_says_synthetic_and_is_checked(tmp_path: Path) -> None:
    info = load_model_info(DEMO_MODEL)
    assert info.synthetic_data is True and info.raw["synthetic_note"].startswith("SYNTHETIC")
    assert info.raw["onnx"]["opset"] == 17 and info.raw["input_shape"] == ["batch", len(CHANNELS), 64, 64]
    assert info.raw["channel_layout"] == list(CHANNELS) and info.threshold == 0.98
    assert info.metrics["synthetic_data"] is True and DEMO_MODEL.stat().st_size < 2_000_000
    copy = tmp_path / "m.onnx"
    shutil.copy(DEMO_MODEL, copy)
    raw = dict(info.raw)
    raw["preprocessing"] = {**raw["preprocessing"], "motion_gain": 1.0}
    (tmp_path / "m.json").write_text(json.dumps(raw))
    with pytest.raises(ValueError, match="different preprocessing"):
        LivenessPipeline.from_model(copy)
    (tmp_path / "m.json").unlink()
    with pytest.raises(FileNotFoundError, match="metadata"):
        load_model_info(copy)
