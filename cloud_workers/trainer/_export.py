"""Export: ONNX (with a parity check against PyTorch on ONNX Runtime) and the MONAI bundle layout.

A bundle is self-contained::

    bundle/
      configs/metadata.json    MONAI metadata (versions, network_data_format) + metrics, data card, privacy
      configs/inference.json   a MONAI ConfigParser config whose ``network_def`` rebuilds the network
      models/model.pt          the network's state dict
      models/model.onnx        the same network in ONNX (optional)
      models/text_encoder/     the BERT directory (config, weights, tokenizer) the network was built with
      docs/README.md, docs/data_card.md
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from streams.multimodal import BundleInfo, MultimodalConfig, MultimodalNet, build_model, load_bundle

__all__ = ["BundleInfo", "bundle_zip", "export_onnx", "load_bundle", "onnx_parity", "save_bundle"]

INPUT_NAMES = ("image", "input_ids", "attention_mask", "policy")
#: The TorchScript-based exporter: it traces MONAI's Swin (shape-dependent padding) and BERT reliably; torch
#: marks it deprecated in favour of the torch.export one, which would also need onnxscript.
_LEGACY_EXPORT = "You are using the legacy TorchScript-based ONNX export"


def example_inputs(config: MultimodalConfig, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A seeded batch of the network's inputs (for export and parity checks)."""
    gen = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, config.in_channels, *config.roi, generator=gen)
    ids = torch.randint(1000, 2000, (batch, config.max_tokens), generator=gen)
    ids[:, 0] = 101
    mask = torch.ones(batch, config.max_tokens, dtype=torch.int64)
    mask[:, config.max_tokens // 2 :] = 0
    policy = torch.randn(batch, config.policy_features, generator=gen)
    return image, ids, mask, policy


def export_onnx(model: MultimodalNet, path: Path, *, opset: int = 17) -> Path:
    """Write ``model`` (eval mode, dynamic batch) to ``path``; returns it."""
    model.eval()
    inputs = example_inputs(model.config)
    axes = {name: {0: "batch"} for name in INPUT_NAMES} | {"logits": {0: "batch"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{_LEGACY_EXPORT}.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*The feature will be removed.*", category=DeprecationWarning)
        # MONAI's Swin computes window padding with np.ceil on traced sizes (a NumPy 2 deprecation while tracing).
        warnings.filterwarnings("ignore", message=".*__array_wrap__ must accept context.*", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # type: ignore[attr-defined]
        warnings.filterwarnings("ignore", message=".*Converting a tensor to a Python.*")
        warnings.filterwarnings("ignore", message=".*Exporting aten::index operator.*", category=UserWarning)
        torch.onnx.export(
            model,
            inputs,
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=["logits"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
    return path


def onnx_parity(model: MultimodalNet, path: Path, *, batch: int = 2, seed: int = 1) -> float:
    """Largest absolute difference between ONNX Runtime and PyTorch logits on one seeded batch."""
    import onnxruntime as ort

    model.eval()
    inputs = example_inputs(model.config, batch=batch, seed=seed)
    with torch.no_grad():
        want = model(*inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs, strict=True)}
    got = session.run(["logits"], feeds)[0]
    return float(np.max(np.abs(np.asarray(got) - want)))


def _versions() -> dict[str, str]:
    import monai

    out = {"monai_version": monai.__version__, "pytorch_version": torch.__version__, "numpy_version": np.__version__}
    try:
        import transformers

        out["transformers_version"] = transformers.__version__
    except ImportError:  # pragma: no cover - the text encoder needs it
        pass
    return out


def _metadata(config: MultimodalConfig, version: str, extra: dict[str, Any]) -> dict[str, Any]:
    v = _versions()
    return {
        "schema": "https://github.com/Project-MONAI/MONAI-extra-test-data/releases/download/0.8.1/meta_schema_20220324.json",
        "version": version,
        "changelog": {version: "trained by medkiosk trainer"},
        "monai_version": v["monai_version"],
        "pytorch_version": v["pytorch_version"],
        "numpy_version": v["numpy_version"],
        "required_packages_version": {k: val for k, val in v.items() if k == "transformers_version"},
        "name": "medkiosk multimodal CT + report classifier",
        "task": "case classification from a CT volume, its report and policy features",
        "description": "MONAI 3D Swin CT encoder + BERT report encoder + policy MLP with gated fusion",
        "authors": "medkiosk",
        "copyright": "medkiosk contributors",
        "network_data_format": {
            "inputs": {
                "image": {
                    "type": "image",
                    "format": "hounsfield",
                    "modality": "CT",
                    "num_channels": config.in_channels,
                    "spatial_shape": list(config.roi),
                    "dtype": "float32",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {"0": "image (HU -1000..1000 scaled to 0..1)"},
                },
                "input_ids": {
                    "type": "tokens",
                    "format": "wordpiece",
                    "num_channels": 0,
                    "spatial_shape": [config.max_tokens],
                    "dtype": "int64",
                    "value_range": [],
                    "is_patch_data": False,
                    "channel_def": {},
                },
                "attention_mask": {
                    "type": "mask",
                    "format": "binary",
                    "num_channels": 0,
                    "spatial_shape": [config.max_tokens],
                    "dtype": "int64",
                    "value_range": [0, 1],
                    "is_patch_data": False,
                    "channel_def": {},
                },
                "policy": {
                    "type": "tabular",
                    "format": "float",
                    "num_channels": 0,
                    "spatial_shape": [config.policy_features],
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": False,
                    "channel_def": {},
                },
            },
            "outputs": {
                "pred": {
                    "type": "logits",
                    "format": "classes",
                    "num_channels": config.num_classes,
                    "spatial_shape": [config.num_classes],
                    "dtype": "float32",
                    "value_range": [],
                    "is_patch_data": False,
                    "channel_def": {},
                },
            },
        },
        "medkiosk": {"network": config.to_dict(), **extra},
    }


def save_bundle(
    model: MultimodalNet,
    out: Path,
    *,
    version: str = "0.1.0",
    metrics: dict[str, float] | None = None,
    data_card: Path | None = None,
    privacy: dict[str, float] | None = None,
    onnx: bool = True,
) -> Path:
    """Write ``model`` as a MONAI bundle under ``out`` (see the module docstring); returns ``out``."""
    cfg = model.config
    if cfg.text_encoder_dir is None:
        raise ValueError("the network has no text encoder directory")
    if out.exists():
        shutil.rmtree(out)
    (out / "configs").mkdir(parents=True)
    (out / "models").mkdir()
    (out / "docs").mkdir()
    text_dir = out / "models" / "text_encoder"
    model.text_encoder.bert.save_pretrained(str(text_dir))
    from streams.multimodal import load_tokenizer

    load_tokenizer(cfg.text_encoder_dir).save_pretrained(str(text_dir))
    bundled = cfg.replace(text_encoder_dir="models/text_encoder")
    extra: dict[str, Any] = {"metrics": metrics or {}, "synthetic_data": data_card is not None}
    if privacy:
        extra["privacy"] = privacy
    (out / "configs" / "metadata.json").write_text(json.dumps(_metadata(bundled, version, extra), indent=2) + "\n")
    inference = {
        "imports": ["$import streams.multimodal"],
        "bundle_root": str(out),
        "net_config": bundled.to_dict(),
        "network_def": {
            "_target_": "streams.multimodal.network_from_dict",
            "config": "@net_config",
            "text_encoder_dir": "$@bundle_root + '/models/text_encoder'",
        },
    }
    (out / "configs" / "inference.json").write_text(json.dumps(inference, indent=2) + "\n")
    torch.save(model.state_dict(), out / "models" / "model.pt")
    if onnx:
        export_onnx(model, out / "models" / "model.onnx")
    if data_card is not None and data_card.is_file():
        shutil.copy(data_card, out / "docs" / "data_card.md")
    (out / "docs" / "README.md").write_text(
        "# medkiosk multimodal classifier\n\nInputs and outputs: `configs/metadata.json`. Weights: `models/model.pt`"
        " (state dict), `models/model.onnx`. Rebuild with MONAI's `ConfigParser` on `configs/inference.json`"
        " (`network_def`).\n" + ("\n**Trained on SYNTHETIC data** (see `data_card.md`).\n" if data_card else "")
    )
    return out


def bundle_zip(root: Path) -> bytes:
    """The bundle as deterministic zip bytes (sorted entries, fixed timestamps): what a model version carries."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(str(path.relative_to(root)), date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, path.read_bytes())
    return buf.getvalue()


def unzip_bundle(data: bytes, out: Path) -> Path:
    """Inverse of :func:`bundle_zip` (refuses entries that would leave ``out``)."""
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for name in zf.namelist():
            target = (out / name).resolve()
            if not target.is_relative_to(root):
                raise ValueError(f"bundle entry {name!r} escapes the bundle")
        zf.extractall(out)  # every entry was checked above
    return out


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def rebuild(config: MultimodalConfig, state: dict[str, torch.Tensor]) -> MultimodalNet:
    """A network of ``config`` with ``state`` loaded."""
    net = build_model(config)
    net.load_state_dict(state)
    return net
