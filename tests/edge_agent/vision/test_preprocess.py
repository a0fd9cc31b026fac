"""The model input: shapes, the temporal cue channels' meaning, and the shift estimator they rely on."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.vision import CHANNELS, build_input, temporal_channels
from edge_agent.vision._preprocess import estimate_shift, normalize_crop, shift_image, to_gray


def texture(seed: int, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.random((size, size, 3)).astype(np.float32)
    return np.clip(cv2.GaussianBlur(noise, (0, 0), 1.5) * 255 * 2.5 - 200, 0, 255).astype(np.uint8)


def test_shape_dtype_and_colour_channels() -> None:
    crop = texture(0)
    x = build_input([crop] * 4)
    assert x.shape == (len(CHANNELS), 64, 64) and x.dtype == np.float32
    assert CHANNELS == ("b", "g", "r", "motion", "residual", "flicker")
    np.testing.assert_allclose(x[:3], normalize_crop(crop))
    assert x[:3].min() >= -1.0 and x[:3].max() <= 1.0


def test_a_still_face_has_no_temporal_cue_and_a_single_crop_none_at_all() -> None:
    crop = texture(1)
    np.testing.assert_allclose(build_input([crop] * 4)[3:], 0.0, atol=1e-4)  # FFT round-off only
    assert not build_input([crop])[3:].any()


def test_global_flicker_lights_the_flicker_channel_only() -> None:
    crop = texture(2)
    brighter = np.clip(crop.astype(np.int16) + 12, 0, 255).astype(np.uint8)
    x = build_input([crop, brighter, crop, brighter])
    assert x[5].mean() > 1.0, "flicker"
    assert x[3].mean() < 0.1 and x[4].mean() < 0.1, "brightness change is not motion"


def test_rigid_translation_is_motion_but_little_residual() -> None:
    gray = to_gray(texture(3))
    moved = [shift_image(gray, 0.4 * i, -0.3 * i) for i in range(4)]
    t = temporal_channels(moved)
    assert t[0].mean() > 4 * t[1].mean(), "translation is explained away in the residual channel"


def test_local_change_is_residual() -> None:
    crop = texture(4)
    blink = crop.copy()
    blink[20:28, 15:50] = 40  # an eyelid closes
    t = build_input([crop, crop, blink, crop])[3:]
    assert t[1][20:28, 15:50].mean() > 10 * t[1][40:, :].mean()


@settings(max_examples=25, deadline=None)
@given(dy=st.floats(-2.5, 2.5), dx=st.floats(-2.5, 2.5), seed=st.integers(0, 50))
def test_phase_correlation_recovers_a_translation(dy: float, dx: float, seed: int) -> None:
    gray = to_gray(texture(seed))
    got = estimate_shift(gray, shift_image(gray, dy, dx))
    assert got == pytest.approx((dy, dx), abs=0.35)


def test_bad_histories_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_input([])
    with pytest.raises(ValueError, match="same shape"):
        build_input([texture(5, 64), texture(5, 32)])
    with pytest.raises(ValueError, match="square"):
        build_input([np.zeros((10, 12, 3), np.uint8)])
