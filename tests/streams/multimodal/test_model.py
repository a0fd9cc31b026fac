"""Shapes through every stage of the multimodal network, freezing, and the flat parameter form."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from streams.multimodal import (
    EMBED_DIM,
    POLICY_DIM,
    FusionHead,
    ImageEncoder,
    MultimodalConfig,
    PolicyNet,
    TextEncoder,
    build_model,
    flatten_params,
    load_flat_params,
)
from tests.streams.multimodal.helpers import TEST_ROI, minilm_dir, tiny_config


def _tokens(batch: int, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(1000, 3000, (batch, length), generator=torch.Generator().manual_seed(0))
    mask = torch.ones(batch, length, dtype=torch.int64)
    mask[1, length // 2 :] = 0
    return ids, mask


def test_every_stage_has_the_documented_shape(tiny_bert: Path) -> None:
    cfg = tiny_config(tiny_bert)
    torch.manual_seed(0)
    image = torch.rand(2, 1, *TEST_ROI)
    ids, mask = _tokens(2, cfg.max_tokens)
    policy = torch.randn(2, cfg.policy_features)

    img_enc = ImageEncoder(cfg)
    stages = img_enc.swin(image, normalize=True)
    assert stages[-1].shape[1] == cfg.image_dim == 16 * 12  # 192 channels: projected to 512
    assert isinstance(img_enc.proj[0], torch.nn.Linear)
    assert img_enc(image).shape == (2, EMBED_DIM)
    assert TextEncoder(cfg)(ids, mask).shape == (2, EMBED_DIM)
    assert PolicyNet(cfg.policy_features, cfg.policy_hidden)(policy).shape == (2, POLICY_DIM)
    head = FusionHead(cfg)
    gates = head.gates(policy)
    assert gates.shape == (2, 2 * EMBED_DIM) and bool(((gates > 0) & (gates < 1)).all())
    assert head(torch.randn(2, EMBED_DIM), torch.randn(2, EMBED_DIM), policy).shape == (2, cfg.num_classes)

    net = build_model(cfg, seed=0)
    assert net(image, ids, mask, policy).shape == (2, cfg.num_classes)
    concat = build_model(cfg.replace(fusion="concat"), seed=0)
    assert concat.fusion.gate is None
    assert concat(image, ids, mask, policy).shape == (2, cfg.num_classes)


def test_the_last_swin_stage_is_projected_to_512() -> None:
    # 16 * feature_size channels; never 512 for the multiples of 12 MONAI's Swin UNETR family uses.
    for fs in (12, 36, 48):
        enc = ImageEncoder(MultimodalConfig(roi=TEST_ROI, feature_size=fs, depths=(1, 1, 1, 1)))
        linear = enc.proj[0]
        assert isinstance(linear, torch.nn.Linear)
        assert (linear.in_features, linear.out_features) == (16 * fs, EMBED_DIM)


def test_frozen_encoders_do_not_train(tiny_bert: Path) -> None:
    net = build_model(tiny_config(tiny_bert), seed=0)
    net.train()
    assert not net.image_encoder.training and not net.text_encoder.training
    assert net.fusion.training
    assert not any(p.requires_grad for p in net.image_encoder.parameters())
    assert not any(p.requires_grad for p in net.text_encoder.parameters())
    assert all(p.requires_grad for p in net.fusion.parameters())
    tuned = build_model(tiny_config(tiny_bert, freeze_encoders=False), seed=0).train()
    assert tuned.text_encoder.training and all(p.requires_grad for p in tuned.text_encoder.parameters())


def test_seeded_builds_are_identical(tiny_bert: Path) -> None:
    a, b = build_model(tiny_config(tiny_bert), seed=3), build_model(tiny_config(tiny_bert), seed=3)
    np.testing.assert_array_equal(flatten_params(a), flatten_params(b))
    c = build_model(tiny_config(tiny_bert), seed=4)
    assert not np.array_equal(flatten_params(a.fusion), flatten_params(c.fusion))


def test_minilm_directory_loads_and_hidden_size_is_checked() -> None:
    d = minilm_dir()
    enc = TextEncoder(tiny_config(d, text_hidden=384))
    ids, mask = _tokens(2, 16)
    assert enc(ids, mask).shape == (2, EMBED_DIM)
    with pytest.raises(ValueError, match="text_hidden is 32"):
        TextEncoder(tiny_config(d, text_hidden=32))


def test_missing_text_encoder_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no config\.json"):
        TextEncoder(tiny_config(tmp_path / "nope"))
    with pytest.raises(ValueError, match="text_encoder_dir"):
        TextEncoder(MultimodalConfig(roi=TEST_ROI, feature_size=12))


def test_flat_params_round_trip_and_refuse_bad_vectors() -> None:
    head = FusionHead(MultimodalConfig(roi=TEST_ROI, feature_size=12))
    flat = flatten_params(head)
    assert flat.shape == (sum(p.numel() for p in head.parameters()),)
    other = FusionHead(MultimodalConfig(roi=TEST_ROI, feature_size=12))
    load_flat_params(other, flat)
    np.testing.assert_array_equal(flatten_params(other), flat.astype(np.float32).astype(np.float64))
    with pytest.raises(ValueError, match="expected a vector"):
        load_flat_params(other, flat[:-1])
    bad = flat.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        load_flat_params(other, bad)


def test_config_round_trips_and_refuses_nonsense() -> None:
    cfg = MultimodalConfig(roi=TEST_ROI, feature_size=12, fusion="concat")
    assert MultimodalConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        MultimodalConfig.from_dict({**cfg.to_dict(), "evil": 1})
    for bad in ({"feature_size": 10}, {"roi": (0, 1, 1)}, {"fusion": "sum"}, {"num_classes": 1}, {"dropout": 1.0}):
        with pytest.raises(ValueError):
            cfg.replace(**bad)
