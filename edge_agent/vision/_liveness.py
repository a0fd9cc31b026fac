"""Serving: frame → face → history → liveness score, through any ``InferenceEngine``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from edge_agent.fusion import LivenessResult
from edge_agent.inference import InferenceEngine
from edge_agent.vision._faces import FaceBox, FaceDetector
from edge_agent.vision._metadata import load_model_info
from edge_agent.vision._retinaface import FaceLocator
from edge_agent.vision._sources import Frame
from edge_agent.vision._track import FaceHistory, HistoryConfig

__all__ = ["LivenessObservation", "LivenessPipeline"]


@dataclass(frozen=True, slots=True)
class LivenessObservation:
    """The liveness verdict on one frame.

    ``live_score`` is P(live) from the model, or None when there is no face or the face's history is still
    shorter than the model's K frames (``history_len``); such frames are never live. ``latency_ns`` covers
    detection, preprocessing and inference (``detect_ns`` + ``preprocess_ns`` + ``infer_ns``, about).
    """

    captured_at_ns: int
    face_found: bool
    live_score: float | None
    face_box: tuple[int, int, int, int] | None
    model_version: str
    latency_ns: int
    history_len: int = 0
    frame_index: int = -1
    detect_ns: int = 0
    preprocess_ns: int = 0
    infer_ns: int = 0
    #: When the frame reached the kiosk (kiosk clock); None: not known.
    received_at_ns: int | None = None

    def is_live(self, threshold: float) -> bool:
        """Whether the score is strictly above ``threshold`` (the seed accepts only *above* 0.98)."""
        return self.live_score is not None and self.live_score > threshold

    def to_result(self) -> LivenessResult:
        """The fusion's view of this frame (an unscored face stays unscored: "no score yet" is not 0.0)."""
        return LivenessResult(self.captured_at_ns, self.face_found, self.live_score)


class LivenessPipeline:
    """Face detection, the per-track face history and the liveness model for one camera.

    ``engine`` serves the ONNX model (``edge_agent.inference``); ``history``, ``input_size`` and
    ``crop_scale`` must be those the model was trained with (``from_model`` reads them from its metadata).
    Frames must come in capture order. ``process_async`` runs detection and preprocessing in a worker
    thread and the model through ``engine.run_async``; concurrent calls are served one at a time, in order.
    """

    def __init__(
        self,
        engine: InferenceEngine,
        *,
        threshold: float = 0.98,
        history: int = 4,
        model_version: str = "unknown",
        input_size: int = 64,
        crop_scale: float = 1.4,
        detector: FaceLocator | None = None,
        history_config: HistoryConfig | None = None,
        max_missed: int = 3,
    ) -> None:
        self.engine = engine
        self.threshold = threshold
        self.model_version = model_version
        self.detector: FaceLocator = detector or FaceDetector()
        cfg = history_config or HistoryConfig(
            history=history, input_size=input_size, crop_scale=crop_scale, max_missed=max_missed
        )
        self._history = FaceHistory(cfg)
        self._input_name = engine.info.inputs[0]
        self._output_name = engine.info.outputs[0]
        self._lock = asyncio.Lock()

    @classmethod
    def from_model(
        cls, model_path: Path, *, threads: int = 1, threshold: float | None = None, detector: FaceLocator | None = None
    ) -> LivenessPipeline:
        """A pipeline on ONNX Runtime (CPU) for ``model_path``, configured from the metadata JSON beside it."""
        from edge_agent.inference import OnnxRuntimeEngine

        info = load_model_info(Path(model_path))
        return cls(
            OnnxRuntimeEngine(info.model_path, threads=threads),
            threshold=info.threshold if threshold is None else threshold,
            history=info.history,
            model_version=info.model_version,
            input_size=info.input_size,
            crop_scale=info.crop_scale,
            detector=detector,
        )

    @property
    def history(self) -> FaceHistory:
        """The current face track (its length, its resets)."""
        return self._history

    def reset(self) -> None:
        """Forget the current face (e.g. when the camera was switched)."""
        self._history.reset()

    def _prepare(self, frame: Frame) -> tuple[FaceBox | None, NDArray[np.float32] | None, int, int]:
        t0 = time.perf_counter_ns()
        box = self.detector.largest(frame.image)
        t1 = time.perf_counter_ns()
        x = self._history.update(frame.image, box)
        return box, x, t1 - t0, time.perf_counter_ns() - t1

    def _observe(
        self, frame: Frame, box: FaceBox | None, score: float | None, times: tuple[int, int, int]
    ) -> LivenessObservation:
        return LivenessObservation(
            captured_at_ns=frame.captured_at_ns,
            face_found=box is not None,
            live_score=score,
            face_box=box.as_tuple() if box is not None else None,
            model_version=self.model_version,
            latency_ns=sum(times),
            history_len=len(self._history),
            frame_index=frame.index,
            detect_ns=times[0],
            preprocess_ns=times[1],
            infer_ns=times[2],
            received_at_ns=frame.received_at_ns,
        )

    def _score(self, outputs: dict[str, NDArray[np.generic]]) -> float:
        return float(np.asarray(outputs[self._output_name], dtype=np.float32).reshape(-1)[0])

    def process(self, frame: Frame) -> LivenessObservation:
        """Detect, track and score one frame (blocking)."""
        box, x, detect_ns, prep_ns = self._prepare(frame)
        score, infer_ns = None, 0
        if x is not None and self._history.full:
            t = time.perf_counter_ns()
            score = self._score(self.engine.run({self._input_name: x[None]}))
            infer_ns = time.perf_counter_ns() - t
        return self._observe(frame, box, score, (detect_ns, prep_ns, infer_ns))

    async def process_async(self, frame: Frame) -> LivenessObservation:
        """``process`` without blocking the event loop."""
        async with self._lock:
            box, x, detect_ns, prep_ns = await asyncio.to_thread(self._prepare, frame)
            score, infer_ns = None, 0
            if x is not None and self._history.full:
                t = time.perf_counter_ns()
                score = self._score(await self.engine.run_async({self._input_name: x[None]}))
                infer_ns = time.perf_counter_ns() - t
            return self._observe(frame, box, score, (detect_ns, prep_ns, infer_ns))
