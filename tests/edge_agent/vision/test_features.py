"""The dataset layout reader and featurisation: stills, clips, split by whole clip."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.vision import HistoryConfig, featurize_clips, list_clips, split_by_clip


def test_stills_are_motionless_clips_and_clips_give_one_input_per_full_history(
    tmp_path: Path, grace_hopper: np.ndarray, small_dataset: Path
) -> None:
    (tmp_path / "live").mkdir()
    (tmp_path / "spoof").mkdir()
    cv2.imwrite(str(tmp_path / "live" / "a.jpg"), grace_hopper)
    cv2.imwrite(str(tmp_path / "spoof" / "b.png"), (grace_hopper // 2 + 60).astype(np.uint8))
    clips = list_clips(tmp_path)
    assert [(c.name, c.live, len(c.frames)) for c in clips] == [("live/a.jpg", True, 1), ("spoof/b.png", False, 1)]
    stills = featurize_clips(clips, HistoryConfig(history=3))
    assert stills.inputs.shape == (2, 6, 64, 64) and stills.live.tolist() == [True, False]
    np.testing.assert_allclose(stills.inputs[:, 3:], 0.0, atol=1e-4)

    clips = list_clips(small_dataset)
    assert sum(c.live for c in clips) == 4 and {c.attack for c in clips if not c.live} == {
        "print",
        "replay",
        "print_hq",
        "replay_hq",
    }
    feats = featurize_clips(clips[:2], HistoryConfig(history=3))
    assert len(feats.inputs) <= 2 * (6 - 3 + 1) and len(feats.inputs) >= 6
    assert feats.inputs[:, 3:].max() > 0.05, "moving clips have temporal cues"


def test_split_keeps_clips_whole_and_holds_out_both_labels(small_dataset: Path) -> None:
    clips = list_clips(small_dataset)
    train, held = split_by_clip(clips, 0.25, np.random.default_rng(0))
    assert sorted(train + held) == list(range(len(clips))) and not set(train) & set(held)
    assert {clips[i].live for i in held} == {True, False}
    assert split_by_clip(clips, 0.25, np.random.default_rng(0)) == (train, held)


def test_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="live/ and spoof/"):
        list_clips(tmp_path)
    (tmp_path / "live").mkdir()
    (tmp_path / "spoof").mkdir()
    with pytest.raises(ValueError, match="at least one live and one spoof"):
        list_clips(tmp_path)
