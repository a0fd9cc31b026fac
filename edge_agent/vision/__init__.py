"""Camera and face liveness: frame sources, face detection (RetinaFace through ``cv2.dnn``, Haar as the fallback),
the pretrained MiniFASNet pair, the GhostNet-style liveness model, and their pipelines.

Serving needs numpy, OpenCV (imported when first used) and an inference engine; the torch-based names
(``GhostLivenessNet``, ``MiniFASNet``, ``load_minifasnet``, ``TrainConfig``, ``TrainResult``, ``train_liveness``,
``export_onnx``) are imported only when first accessed. ``make_synthetic_dataset`` writes a SYNTHETIC dataset;
anything trained on it says so in its metadata.

Entry points: ``python -m edge_agent.vision.make_dataset OUT --clips N --seed S``,
``python -m edge_agent.vision.train DATASET --out MODEL.onnx`` and
``python -m edge_agent.vision.export_silent_face WEIGHTS_DIR OUT_DIR``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edge_agent.vision._dataset import DatasetClip, face_sources, list_clips, make_synthetic_dataset, read_dataset_info
from edge_agent.vision._faces import FaceBox, FaceDetector, crop_face, face_input
from edge_agent.vision._features import ClipFeatures, featurize_clips, split_by_clip
from edge_agent.vision._liveness import LivenessObservation, LivenessPipeline
from edge_agent.vision._metadata import DEMO_MODEL, LivenessModelInfo, load_model_info, metadata_path
from edge_agent.vision._metrics import auc, equal_error_rate, pad_metrics
from edge_agent.vision._preprocess import CHANNELS, build_input, temporal_channels
from edge_agent.vision._retinaface import FaceLocator, RetinaFaceDetector, open_face_detector
from edge_agent.vision._silentface import MiniFASNetPipeline, context_crop, export_silent_face, read_silent_face
from edge_agent.vision._source_kinds import DeviceSource, ImageFolderSource, VideoFileSource, open_source
from edge_agent.vision._sources import Frame, FrameSource, FrameSourceError, SourceNotFoundError
from edge_agent.vision._synthetic import ClipKind, FaceSource, render_clip
from edge_agent.vision._track import FaceHistory, HistoryConfig

if TYPE_CHECKING:
    from edge_agent.vision._minifasnet import MiniFASNet, load_minifasnet
    from edge_agent.vision._model import GhostLivenessNet
    from edge_agent.vision._train import TrainConfig, TrainResult, export_onnx, train_liveness

__all__ = [
    "CHANNELS",
    "DEMO_MODEL",
    "ClipFeatures",
    "ClipKind",
    "DatasetClip",
    "DeviceSource",
    "FaceBox",
    "FaceDetector",
    "FaceHistory",
    "FaceLocator",
    "FaceSource",
    "Frame",
    "FrameSource",
    "FrameSourceError",
    "GhostLivenessNet",
    "HistoryConfig",
    "ImageFolderSource",
    "LivenessModelInfo",
    "LivenessObservation",
    "LivenessPipeline",
    "MiniFASNet",
    "MiniFASNetPipeline",
    "RetinaFaceDetector",
    "SourceNotFoundError",
    "TrainConfig",
    "TrainResult",
    "VideoFileSource",
    "auc",
    "build_input",
    "context_crop",
    "crop_face",
    "equal_error_rate",
    "export_onnx",
    "export_silent_face",
    "face_input",
    "face_sources",
    "featurize_clips",
    "list_clips",
    "load_minifasnet",
    "load_model_info",
    "make_synthetic_dataset",
    "metadata_path",
    "open_face_detector",
    "open_source",
    "pad_metrics",
    "read_dataset_info",
    "read_silent_face",
    "render_clip",
    "split_by_clip",
    "temporal_channels",
    "train_liveness",
]

_LAZY = {
    "MiniFASNet": "edge_agent.vision._minifasnet",
    "load_minifasnet": "edge_agent.vision._minifasnet",
    "GhostLivenessNet": "edge_agent.vision._model",
    "TrainConfig": "edge_agent.vision._train",
    "TrainResult": "edge_agent.vision._train",
    "export_onnx": "edge_agent.vision._train",
    "train_liveness": "edge_agent.vision._train",
}


def __getattr__(name: str) -> Any:
    """Import the torch-based names on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
