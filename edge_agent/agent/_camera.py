"""The kiosk's liveness source: a camera (or video/image folder) through the face + liveness pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from edge_agent.agent._agent import LivenessObservation
from edge_agent.agent._config import CameraConfig, LivenessSettings
from edge_agent.inference import HotSwapEngine, SwapRejected, create_engine
from edge_agent.vision import FrameSource, LivenessPipeline, load_model_info, open_source
from edge_agent.vision._retinaface import open_face_detector
from edge_agent.vision._silentface import MiniFASNetPipeline

__all__ = ["CameraLiveness"]


class CameraLiveness:
    """``LivenessSource`` for ``EdgeAgent``. With the GhostNet-style model, the model sits on a
    ``HotSwapEngine`` so new versions from the cloud replace it without dropping a frame (``swap_model``); the
    pretrained MiniFASNet pair is deployed as files and refuses cloud updates."""

    def __init__(
        self,
        source: FrameSource,
        pipeline: LivenessPipeline | MiniFASNetPipeline,
        hot: HotSwapEngine | None,
        models_dir: Path,
    ) -> None:
        self.source = source
        self.pipeline = pipeline
        self.hot = hot
        self._models_dir = models_dir
        self.frames = 0

    @classmethod
    def create(cls, camera: CameraConfig, liveness: LivenessSettings, *, models_dir: Path) -> CameraLiveness:
        detector = open_face_detector(liveness.detector, liveness.detector_model)  # type: ignore[arg-type]
        source = open_source(camera.source, fps=camera.fps, loop=camera.loop)
        if liveness.kind == "minifasnet":
            pair = MiniFASNetPipeline.from_dir(
                liveness.model, detector=detector, engine=liveness.engine, threshold=liveness.threshold
            )
            return cls(source, pair, None, models_dir)
        info = load_model_info(liveness.model)
        hot = HotSwapEngine(create_engine(liveness.engine, info.model_path), version=info.model_version)  # type: ignore[arg-type]
        pipeline = LivenessPipeline(
            hot,
            threshold=liveness.threshold,
            history=info.history,
            model_version=info.model_version,
            input_size=info.input_size,
            crop_scale=info.crop_scale,
            detector=detector,
            max_missed=liveness.max_missed,
        )
        return cls(source, pipeline, hot, models_dir)

    @property
    def model_version(self) -> str:
        return self.hot.version if self.hot is not None else self.pipeline.model_version

    async def observations(self) -> AsyncIterator[LivenessObservation]:
        await self.source.start()
        async for frame in self.source:
            obs = await self.pipeline.process_async(frame)
            self.frames += 1
            yield LivenessObservation(
                captured_at_ns=obs.captured_at_ns,
                face_found=obs.face_found,
                live_score=obs.live_score,
                face_box=obs.face_box,
                model_version=self.model_version,
                latency_ns=obs.latency_ns,
                received_at_ns=obs.received_at_ns,
            )

    def set_fps(self, fps: float) -> None:
        self.source.set_fps(fps)

    async def swap_model(self, name: str, version: int, weights: bytes) -> None:
        if self.hot is None:
            raise SwapRejected(str(version), "the kiosk serves the pretrained MiniFASNet pair; it takes no updates")
        self._models_dir.mkdir(parents=True, exist_ok=True)
        path = self._models_dir / f"{name}-v{version}.onnx"
        path.write_bytes(weights)
        await self.hot.swap(path, version=str(version))

    async def aclose(self) -> None:
        await self.source.stop()
