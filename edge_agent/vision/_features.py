"""Dataset clips → model inputs, through exactly the detector and face history the pipeline serves with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_agent.vision._cv import cv2 as load_cv2
from edge_agent.vision._dataset import DatasetClip
from edge_agent.vision._faces import FaceDetector
from edge_agent.vision._preprocess import CHANNELS
from edge_agent.vision._track import FaceHistory, HistoryConfig

__all__ = ["ClipFeatures", "featurize_clips", "split_by_clip"]


@dataclass(frozen=True, slots=True)
class ClipFeatures:
    """Model inputs of many clips: ``inputs[i]`` came from clip ``clip_of[i]``; frames without a face are absent."""

    inputs: NDArray[np.float32]
    live: NDArray[np.bool_]
    clip_of: NDArray[np.int64]
    clips: tuple[DatasetClip, ...]
    #: Frames read, and frames where the detector found no face.
    frames: int
    frames_without_face: int

    def subset(self, clip_ids: Sequence[int]) -> ClipFeatures:
        """Only the samples of the given clips."""
        mask = np.isin(self.clip_of, np.asarray(clip_ids, dtype=np.int64))
        return ClipFeatures(
            self.inputs[mask], self.live[mask], self.clip_of[mask], self.clips, self.frames, self.frames_without_face
        )

    def attack_types(self) -> list[str | None]:
        """The attack type of each sample's clip (None for live samples or when unknown)."""
        return [self.clips[int(c)].attack for c in self.clip_of]


def featurize_clips(
    clips: Sequence[DatasetClip], config: HistoryConfig, *, detector: FaceDetector | None = None
) -> ClipFeatures:
    """One model input per frame whose face history is full (``config.history`` frames of one track).

    A still image stands for a motionless clip: it is fed ``history`` times (zero temporal channels), so a
    dataset of stills trains the colour texture only.
    """
    cv2 = load_cv2()

    detector = detector or FaceDetector()
    inputs: list[NDArray[np.float32]] = []
    labels: list[bool] = []
    owners: list[int] = []
    frames = missing = 0
    for index, clip in enumerate(clips):
        history = FaceHistory(config)
        paths = clip.frames * config.history if len(clip.frames) == 1 else clip.frames
        box = None
        for i, path in enumerate(paths):
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise ValueError(f"{path} is not a readable image")
            if i == 0 or len(clip.frames) > 1:
                box = detector.largest(image)
                frames += 1
                missing += box is None
            x = history.update(image, box)
            if x is not None and history.full:
                inputs.append(x)
                labels.append(clip.live)
                owners.append(index)
    size = config.input_size
    return ClipFeatures(
        inputs=np.stack(inputs) if inputs else np.zeros((0, len(CHANNELS), size, size), np.float32),
        live=np.asarray(labels, dtype=bool),
        clip_of=np.asarray(owners, dtype=np.int64),
        clips=tuple(clips),
        frames=frames,
        frames_without_face=missing,
    )


def split_by_clip(
    clips: Sequence[DatasetClip], fraction: float, rng: np.random.Generator
) -> tuple[list[int], list[int]]:
    """``(train, held_out)`` clip indices; whole clips go to one side, at least one of each label held out."""
    if not 0.0 < fraction < 1.0:
        raise ValueError("the held-out fraction must be in (0, 1)")
    train: list[int] = []
    held: list[int] = []
    for label in (True, False):
        ids = np.asarray([i for i, c in enumerate(clips) if c.live == label], dtype=np.int64)
        ids = rng.permutation(ids)
        n = min(len(ids) - 1, max(1, round(fraction * len(ids)))) if len(ids) > 1 else 0
        held += ids[:n].tolist()
        train += ids[n:].tolist()
    return sorted(train), sorted(held)
