"""MONAI dictionary transforms: DICOM series -> scaled, padded, cropped volume; report -> token ids.

All randomness (the training crop) comes from one generator set with :func:`seed_transforms`.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["TokenizeReportd", "build_transforms", "seed_transforms"]

# LoadImage instantiates every reader MONAI knows; the GPU (nvImageCodec) one warns when it is absent.
_NVIMGCODEC = "NvImgCodecPydicomReader"


class TokenizeReportd:
    """Tokenise ``report`` into fixed-length ``input_ids`` and ``attention_mask`` (int64) in the same dict."""

    def __init__(self, tokenizer: Any, *, key: str = "report", max_tokens: int = 64) -> None:
        self.tokenizer = tokenizer
        self.key = key
        self.max_tokens = max_tokens

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        enc = self.tokenizer(
            str(d[self.key]), padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt"
        )
        d["input_ids"] = enc["input_ids"][0].to(torch.int64)
        d["attention_mask"] = enc["attention_mask"][0].to(torch.int64)
        return d


class _As3d:
    """A series of one slice loads as a 2D image: give it a depth axis of 1 (then it is padded like any other)."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image = d["image"]
        if image.ndim == 2:
            plain = image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)
            d["image"] = plain[..., None]
        elif image.ndim != 3:
            raise ValueError(f"expected a 2D slice or a 3D volume, got shape {tuple(image.shape)}")
        return d


class _Tensors:
    """``policy`` -> float32, ``label`` -> int64, ``image`` -> a plain float32 tensor (no MONAI metadata)."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        d["policy"] = torch.as_tensor(np.asarray(d["policy"], dtype=np.float32))
        d["label"] = torch.as_tensor(int(d["label"]), dtype=torch.int64)
        image = d["image"]
        d["image"] = (image.as_tensor() if hasattr(image, "as_tensor") else torch.as_tensor(image)).float()
        return d


def build_transforms(
    roi: Sequence[int], tokenizer: Any | None, *, train: bool, max_tokens: int = 64, seed: int = 0
) -> Any:
    """The MONAI ``Compose``: load the series, channel-first, HU [-1000, 1000] -> [0, 1] (clipped), pad to
    ``roi``, random crop (``train``) or centre crop, tokenise the report (when a tokenizer is given)."""
    from monai.data.image_reader import PydicomReader
    from monai.transforms.compose import Compose
    from monai.transforms.croppad.dictionary import CenterSpatialCropd, RandSpatialCropd, SpatialPadd
    from monai.transforms.intensity.dictionary import ScaleIntensityRanged
    from monai.transforms.io.dictionary import LoadImaged
    from monai.transforms.utility.dictionary import EnsureChannelFirstd

    size = [int(v) for v in roi]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{_NVIMGCODEC}.*", category=UserWarning)
        reader: Any = PydicomReader()  # an instance: LoadImaged's annotation names only classes and names
        load = LoadImaged(keys="image", reader=reader, image_only=True)
    crop: Any = (
        RandSpatialCropd(keys="image", roi_size=size, random_size=False)
        if train
        else CenterSpatialCropd(keys="image", roi_size=size)
    )
    steps: list[Any] = [
        load,
        _As3d(),
        EnsureChannelFirstd(keys="image", channel_dim="no_channel"),
        ScaleIntensityRanged(keys="image", a_min=-1000, a_max=1000, b_min=0.0, b_max=1.0, clip=True),
        SpatialPadd(keys="image", spatial_size=size),
        crop,
    ]
    if tokenizer is not None:
        steps.append(TokenizeReportd(tokenizer, max_tokens=max_tokens))
    steps.append(_Tensors())
    compose = Compose(steps)
    seed_transforms(compose, seed)
    return compose


def seed_transforms(compose: Any, seed: int) -> None:
    """Reset every random transform in ``compose`` to a generator seeded with ``seed``."""
    compose.set_random_state(seed=int(seed) % (2**32))
