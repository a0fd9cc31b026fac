"""The pretrained MiniFASNet pair (Silent-Face anti-spoofing) as a kiosk liveness pipeline, on any engine.

Each member sees its own context crop: the face box scaled around its centre (x2.7 for MiniFASNetV2, x4.0 for
MiniFASNetV1SE), capped so that it fits in the frame, shifted inside it, resized to 80 x 80; BGR float 0-255.
The live score is the mean of the members' softmax class 1 (the published practice). The model scores single
frames, so every frame with a face has a score at once (no history to fill).

A model folder (``export_silent_face`` writes one from the published checkpoints) holds ``silent-face.json``
and, per member, ``<name>.onnx`` plus ``<name>.pt2``, so ONNX Runtime, TensorRT and Torch CUDA can all serve it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_agent.inference import InferenceEngine
from edge_agent.vision._cv import cv2 as load_cv2
from edge_agent.vision._faces import FaceBox
from edge_agent.vision._liveness import LivenessObservation
from edge_agent.vision._retinaface import FaceLocator
from edge_agent.vision._sources import Frame

__all__ = [
    "SILENT_FACE_CHECKPOINTS",
    "SILENT_FACE_META",
    "MiniFASNetPipeline",
    "SilentFaceMember",
    "context_crop",
    "export_silent_face",
    "read_silent_face",
]

SILENT_FACE_META = "silent-face.json"
#: The published checkpoints: (file, member name, crop scale).
SILENT_FACE_CHECKPOINTS = (
    ("2.7_80x80_MiniFASNetV2.pth", "minifasnet-v2", 2.7),
    ("4_0_0_80x80_MiniFASNetV1SE.pth", "minifasnet-v1se", 4.0),
)


@dataclass(frozen=True, kw_only=True)
class SilentFaceMember:
    """One network of the ensemble: its ONNX file (a ``.pt2`` beside it), its crop scale and input size."""

    name: str
    path: Path
    scale: float
    size: int = 80


def context_crop(image: NDArray[np.uint8], box: FaceBox, *, scale: float, size: int = 80) -> NDArray[np.uint8]:
    """The face box scaled by ``scale`` around its centre (capped to fit the frame, shifted inside it),
    resized to ``size`` x ``size``: the crop the MiniFASNet checkpoints were trained on."""
    cv2 = load_cv2()
    src_h, src_w = image.shape[:2]
    x, y, box_w, box_h = box.as_tuple()
    scale = min((src_h - 1) / box_h, (src_w - 1) / box_w, scale)
    new_w, new_h = box_w * scale, box_h * scale
    cx, cy = x + box_w / 2, y + box_h / 2
    left, top = cx - new_w / 2, cy - new_h / 2
    right, bottom = cx + new_w / 2, cy + new_h / 2
    if left < 0:
        right -= left
        left = 0
    if top < 0:
        bottom -= top
        top = 0
    if right > src_w - 1:
        left -= right - src_w + 1
        right = src_w - 1
    if bottom > src_h - 1:
        top -= bottom - src_h + 1
        bottom = src_h - 1
    region = image[int(top) : int(bottom) + 1, int(left) : int(right) + 1]
    crop: NDArray[np.uint8] = cv2.resize(region, (size, size))
    return crop


def read_silent_face(model_dir: Path) -> tuple[list[SilentFaceMember], dict[str, Any]]:
    """The members and metadata of an exported model folder."""
    meta = json.loads((Path(model_dir) / SILENT_FACE_META).read_text())
    members = [
        SilentFaceMember(name=m["name"], path=Path(model_dir) / m["file"], scale=float(m["scale"]), size=int(m["size"]))
        for m in meta["members"]
    ]
    if not members:
        raise ValueError(f"{model_dir / SILENT_FACE_META} lists no members")
    return members, meta


def export_silent_face(weights_dir: Path, out_dir: Path) -> Path:
    """Build both MiniFASNets from the published checkpoints in ``weights_dir`` (loaded strictly), export each
    to ONNX + ``.pt2`` in ``out_dir``, check ONNX Runtime against torch, and write ``silent-face.json``."""
    import torch

    from edge_agent.inference import OnnxRuntimeEngine
    from edge_agent.vision._minifasnet import export_minifasnet, load_minifasnet

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    members = []
    probe = np.random.default_rng(0).uniform(0, 255, (2, 3, 80, 80)).astype(np.float32)
    for file, name, scale in SILENT_FACE_CHECKPOINTS:
        model = load_minifasnet(Path(weights_dir) / file)
        onnx_path, _ = export_minifasnet(model, out_dir / f"{name}.onnx")
        with torch.inference_mode():
            want = torch.softmax(model(torch.from_numpy(probe)), dim=1).numpy()
        engine = OnnxRuntimeEngine(onnx_path, threads=1)
        got = np.asarray(engine.run({"input": probe})["probs"])
        engine.close()
        if not np.allclose(got, want, atol=1e-5):
            raise RuntimeError(f"{name}: ONNX Runtime differs from torch by {np.abs(got - want).max():.2e}")
        members.append({"name": name, "file": onnx_path.name, "scale": scale, "size": 80, "checkpoint": file})
    meta = {
        "model": "minifasnet-pair",
        "model_version": "silent-face-b6d5f04",
        "source": "minivision-ai/Silent-Face-Anti-Spoofing b6d5f04 (Apache-2.0)",
        "input": "BGR float 0-255, 80x80 context crop per member",
        "live_class": 1,
        "threshold": 0.98,
        "members": members,
    }
    path = out_dir / SILENT_FACE_META
    path.write_text(json.dumps(meta, indent=2) + "\n")
    return path


class MiniFASNetPipeline:
    """Face detection + the MiniFASNet ensemble for one camera, with ``LivenessPipeline``'s serving interface.

    ``members`` pairs each loaded engine (``edge_agent.inference``: ONNX Runtime, Torch CUDA, TensorRT) with
    its crop scale and input size.
    """

    def __init__(
        self,
        members: Sequence[tuple[InferenceEngine, float, int]],
        *,
        detector: FaceLocator,
        threshold: float = 0.98,
        model_version: str = "minifasnet-pair",
    ) -> None:
        if not members:
            raise ValueError("the ensemble needs at least one member")
        self.members = list(members)
        self.detector = detector
        self.threshold = threshold
        self.model_version = model_version
        self._lock = asyncio.Lock()

    @classmethod
    def from_dir(
        cls,
        model_dir: Path,
        *,
        detector: FaceLocator,
        engine: str = "onnxruntime",
        threshold: float | None = None,
        **engine_opts: Any,
    ) -> MiniFASNetPipeline:
        """Load an exported folder with the engine ``engine`` (``create_engine`` kinds)."""
        from edge_agent.inference import create_engine

        members, meta = read_silent_face(model_dir)
        loaded = [(create_engine(engine, m.path, **engine_opts), m.scale, m.size) for m in members]  # type: ignore[arg-type]
        return cls(
            loaded,
            detector=detector,
            threshold=float(meta.get("threshold", 0.98)) if threshold is None else threshold,
            model_version=str(meta.get("model_version", "minifasnet-pair")),
        )

    def member_inputs(self, image: NDArray[np.uint8], box: FaceBox) -> list[NDArray[np.float32]]:
        """Each member's input batch (1 x 3 x size x size) for the face ``box`` in ``image``."""
        return [
            np.ascontiguousarray(context_crop(image, box, scale=scale, size=size).transpose(2, 0, 1)[None], np.float32)
            for _, scale, size in self.members
        ]

    def _combine(self, outputs: list[dict[str, Any]]) -> float:
        probs = [np.asarray(next(iter(out.values())), np.float32).reshape(-1, 3)[0] for out in outputs]
        return float(np.mean([p[1] for p in probs]))

    def score(self, image: NDArray[np.uint8], box: FaceBox) -> float:
        """The ensemble's live probability for one face."""
        inputs = self.member_inputs(image, box)
        outs = [eng.run({eng.info.inputs[0]: x}) for (eng, _, _), x in zip(self.members, inputs, strict=True)]
        return self._combine(outs)

    def reset(self) -> None:
        """Nothing to forget: every frame is scored on its own."""

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
            history_len=1 if box is not None else 0,
            frame_index=frame.index,
            detect_ns=times[0],
            preprocess_ns=times[1],
            infer_ns=times[2],
            received_at_ns=frame.received_at_ns,
        )

    def process(self, frame: Frame) -> LivenessObservation:
        """Detect and score one frame (blocking)."""
        t0 = time.perf_counter_ns()
        box = self.detector.largest(frame.image)
        t1 = time.perf_counter_ns()
        if box is None:
            return self._observe(frame, None, None, (t1 - t0, 0, 0))
        inputs = self.member_inputs(frame.image, box)
        t2 = time.perf_counter_ns()
        outs = [eng.run({eng.info.inputs[0]: x}) for (eng, _, _), x in zip(self.members, inputs, strict=True)]
        score = self._combine(outs)
        return self._observe(frame, box, score, (t1 - t0, t2 - t1, time.perf_counter_ns() - t2))

    async def process_async(self, frame: Frame) -> LivenessObservation:
        """``process`` without blocking the event loop (one frame at a time, in order)."""
        async with self._lock:
            return await asyncio.to_thread(self.process, frame)

    def close(self) -> None:
        """Release every member's engine."""
        for engine, _, _ in self.members:
            engine.close()
