"""The pretrained MiniFASNet pair and the RetinaFace detector, on the published files and real photographs.

The checkpoints, the detector and the photographs are read from ``../shared/models/silent-face/`` beside the
repository (never copied into it); every test here skips, saying why, when that folder is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edge_agent.agent import CameraConfig, LivenessSettings
from edge_agent.agent._camera import CameraLiveness
from edge_agent.inference import OnnxRuntimeEngine, SwapRejected
from edge_agent.vision import (
    FaceBox,
    FaceDetector,
    Frame,
    MiniFASNetPipeline,
    RetinaFaceDetector,
    context_crop,
    open_face_detector,
    read_silent_face,
)

pytestmark = pytest.mark.timeout(120)

SILENT_FACE = Path(__file__).resolve().parents[3].parent / "shared" / "models" / "silent-face"
needs_files = pytest.mark.skipif(
    not (SILENT_FACE / "2.7_80x80_MiniFASNetV2.pth").is_file(),
    reason=f"the published Silent-Face files are not at {SILENT_FACE} (they are data, never in the repository)",
)


def photo(name: str) -> np.ndarray:
    import cv2

    image = cv2.imread(str(SILENT_FACE / name))
    assert image is not None, name
    return image


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SILENT_FACE / "2.7_80x80_MiniFASNetV2.pth").is_file():
        pytest.skip(f"the published Silent-Face files are not at {SILENT_FACE}")
    from edge_agent.vision import export_silent_face

    out = tmp_path_factory.mktemp("silent-face")
    export_silent_face(SILENT_FACE, out)  # raises if ONNX Runtime and torch disagree
    return out


@pytest.fixture(scope="module")
def pair(exported: Path) -> MiniFASNetPipeline:
    return MiniFASNetPipeline.from_dir(exported, detector=RetinaFaceDetector(SILENT_FACE), engine="onnxruntime")


@needs_files
def test_the_checkpoints_load_exactly_into_our_architectures() -> None:
    import torch

    from edge_agent.vision import load_minifasnet

    for name, se in (("2.7_80x80_MiniFASNetV2.pth", False), ("4_0_0_80x80_MiniFASNetV1SE.pth", True)):
        raw = torch.load(SILENT_FACE / name, map_location="cpu", weights_only=True)
        model = load_minifasnet(SILENT_FACE / name)  # strict: every key present, no extra, same shapes
        ours = model.state_dict()
        assert set(ours) == {k.removeprefix("module.") for k in raw}
        for key, tensor in raw.items():
            assert torch.equal(ours[key.removeprefix("module.")], tensor), key
        assert any(w > 0 for w in model.widths.se_hidden) is se
        with torch.inference_mode():
            assert model(torch.zeros(2, 3, 80, 80)).shape == (2, 3)


@needs_files
def test_the_export_serves_on_every_engine_format(exported: Path) -> None:
    import torch

    from edge_agent.inference._torch_program import call_program, load_torch_program

    members, meta = read_silent_face(exported)
    assert [(m.name, m.scale, m.size) for m in members] == [("minifasnet-v2", 2.7, 80), ("minifasnet-v1se", 4.0, 80)]
    assert meta["threshold"] == 0.98
    x = np.random.default_rng(5).uniform(0, 255, (3, 3, 80, 80)).astype(np.float32)
    for m in members:
        onnx = np.asarray(OnnxRuntimeEngine(m.path, threads=1).run({"input": x})["probs"])
        np.testing.assert_allclose(onnx.sum(axis=1), 1.0, atol=1e-5)
        program = load_torch_program(m.path.with_suffix(".pt2"))  # what torch-cuda loads, here on the CPU
        with torch.inference_mode():
            (pt2,) = call_program(program, [torch.from_numpy(x)])
        np.testing.assert_allclose(pt2.numpy(), onnx, atol=1e-5)


@needs_files
def test_real_live_and_spoof_photographs(pair: MiniFASNetPipeline) -> None:
    # The published facts: live image_T1 about 0.99; the two real attacks far below the 0.98 threshold.
    scores = {}
    for name in ("image_T1.jpg", "image_F1.jpg", "image_F2.jpg"):
        obs = pair.process(Frame(photo(name), 1, 0, name))
        assert obs.face_found and obs.live_score is not None, name
        scores[name] = obs.live_score
    assert scores["image_T1.jpg"] > 0.98
    assert scores["image_F1.jpg"] < 0.5
    assert scores["image_F2.jpg"] < 0.5


def test_context_crop_stays_inside_the_frame() -> None:
    image = np.arange(100 * 120 * 3, dtype=np.uint32).reshape(100, 120, 3).astype(np.uint8)
    for box in (FaceBox(0, 0, 30, 30), FaceBox(90, 70, 29, 29), FaceBox(40, 30, 50, 60)):
        for scale in (2.7, 4.0):
            assert context_crop(image, box, scale=scale, size=80).shape == (80, 80, 3)


@needs_files
def test_retinaface_finds_the_face_and_nothing_in_a_blank_frame() -> None:
    det = RetinaFaceDetector(SILENT_FACE)
    box = det.largest(photo("image_T1.jpg"))
    assert box is not None and box.w > 100 and box.h > 100
    assert det.detect(np.full((480, 640, 3), 127, np.uint8)) == []


def test_haar_is_the_fallback(tmp_path: Path) -> None:
    assert isinstance(open_face_detector("auto", None), FaceDetector)
    assert isinstance(open_face_detector("auto", tmp_path), FaceDetector)  # files missing: Haar, with a warning
    assert isinstance(open_face_detector("haar", SILENT_FACE), FaceDetector)
    with pytest.raises(FileNotFoundError):
        open_face_detector("retinaface", tmp_path)
    with pytest.raises(ValueError, match="unknown face detector"):
        open_face_detector("yolo", None)  # type: ignore[arg-type]


@needs_files
async def test_the_kiosk_camera_serves_the_pair_as_configured(exported: Path, tmp_path: Path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, name in enumerate(("image_T1.jpg", "image_F1.jpg")):
        shutil.copy(SILENT_FACE / name, frames / f"{i:02d}.jpg")  # a temporary camera feed, not the repository
    camera = CameraLiveness.create(
        CameraConfig(source=str(frames), fps=50.0),
        LivenessSettings(kind="minifasnet", model=exported, engine="onnxruntime", detector_model=SILENT_FACE),
        models_dir=tmp_path / "models",
    )
    assert isinstance(camera.pipeline, MiniFASNetPipeline)
    assert isinstance(camera.pipeline.detector, RetinaFaceDetector)
    got = [obs async for obs in camera.observations()]
    await camera.aclose()
    assert [o.face_found for o in got] == [True, True]
    assert got[0].live_score is not None and got[0].live_score > 0.98  # scored on the first frame: no history
    assert got[1].live_score is not None and got[1].live_score < 0.5
    assert got[0].model_version == "silent-face-b6d5f04"
    with pytest.raises(SwapRejected):
        await camera.swap_model("liveness", 2, b"not for this model")


def test_liveness_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="kind"):
        LivenessSettings(kind="resnet")
    with pytest.raises(ValueError, match="detector"):
        LivenessSettings(detector="yolo")
    with pytest.raises(ValueError, match="threshold"):
        LivenessSettings(threshold=1.5)


@needs_files
@pytest.mark.parametrize("kind", ["tensorrt", "torch-cuda"])
def test_the_pair_on_a_gpu_engine_scores_like_onnx_runtime(exported: Path, pair: MiniFASNetPipeline, kind: str) -> None:
    from edge_agent.inference import available_engines

    reason = available_engines().get(kind)
    if reason is not None:
        pytest.skip(f"{kind}: {reason}")
    gpu = MiniFASNetPipeline.from_dir(exported, detector=pair.detector, engine=kind)
    try:
        for name in ("image_T1.jpg", "image_F1.jpg", "image_F2.jpg"):
            image = photo(name)
            box = pair.detector.largest(image)
            assert box is not None
            assert abs(gpu.score(image, box) - pair.score(image, box)) < 0.02, name
    finally:
        gpu.close()
