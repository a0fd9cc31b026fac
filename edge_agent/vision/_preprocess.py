"""Model input from a short history of face crops: colour texture plus three temporal cue channels (pure numpy).

The same functions build the input at training time (``edge_agent.vision.train``) and at serving time
(``LivenessPipeline``), so the two can never drift apart.

Definition. The history is ``n <= K`` square BGR uint8 crops ``c_0 … c_{n-1}`` (oldest first), all cut from
their frames with the *same* (current) face box, so a still face gives identical crops. With
``g_i = gray(c_i) / 255`` (BT.601 luma, float) and, for each consecutive pair ``i = 1 … n-1``:

* ``d_i = g_i - g_{i-1}`` (signed change) and ``b_i = mean(d_i)`` (global brightness change);
* ``s_i`` = the sub-pixel translation from ``g_{i-1}`` to ``g_i`` (phase correlation refined by ``REFINE``
  Lucas-Kanade steps; at most ``MAX_SHIFT`` px), ``w_i`` = ``g_{i-1}`` moved by ``s_i`` (Fourier shift) and
  ``e_i = g_i - w_i - mean(g_i - w_i)`` (what rigid translation and global brightness do not explain).

The six channels (``CHANNELS``), each ``S x S`` float32:

0-2. ``b, g, r``: the newest crop, ``(v / 255 - 0.5) / 0.5``, in [-1, 1] (texture: halftone, moiré, pixel grid).
3. ``motion``   ``= MOTION_GAIN · mean_i |d_i - b_i|``: all local change (micro-motion, blinks, sensor noise).
4. ``residual`` ``= RESIDUAL_GAIN · mean_i |e_i|`` with a ``MAX_SHIFT``-px border zeroed: non-rigid change. A
   print moved rigidly leaves little here; a blink or a change of expression does.
5. ``flicker``  ``= FLICKER_GAIN · sqrt(mean_i r_i(y)^2)`` where ``r_i(y) = mean_x d_i(y, x)``, the same for every
   ``x`` of row ``y``: global and rolling (row-banded) brightness flicker, as a replayed screen shows.

Temporal channels are clipped to ``[0, CLIP]``; with fewer than two crops they are all zero.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CHANNELS",
    "CLIP",
    "FLICKER_GAIN",
    "MAX_SHIFT",
    "MOTION_GAIN",
    "REFINE",
    "RESIDUAL_GAIN",
    "build_input",
    "estimate_shift",
    "normalize_crop",
    "shift_image",
    "temporal_channels",
    "to_gray",
]

CHANNELS: tuple[str, ...] = ("b", "g", "r", "motion", "residual", "flicker")
MOTION_GAIN = 10.0
RESIDUAL_GAIN = 20.0
FLICKER_GAIN = 40.0
CLIP = 4.0
MAX_SHIFT = 3.0
#: Lucas-Kanade steps after phase correlation.
REFINE = 1

_LUMA = np.array([0.114, 0.587, 0.299], dtype=np.float32)  # B, G, R
FloatArray = NDArray[np.float32]


def to_gray(crop: NDArray[np.uint8]) -> FloatArray:
    """BT.601 luma of a BGR uint8 crop, as float32 in [0, 1]."""
    return (crop.astype(np.float32) @ _LUMA) / np.float32(255.0)


def normalize_crop(crop: NDArray[np.uint8]) -> FloatArray:
    """A BGR uint8 ``S x S x 3`` crop as a float32 ``3 x S x S`` array in [-1, 1] (channel order B, G, R)."""
    planar = np.transpose(crop, (2, 0, 1)).astype(np.float32)
    return planar * np.float32(2.0 / 255.0) - np.float32(1.0)


@functools.lru_cache(maxsize=8)
def _window(h: int, w: int) -> FloatArray:
    return np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _freqs(h: int, w: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    return np.asarray(np.fft.fftfreq(h), np.float64), np.asarray(np.fft.rfftfreq(w), np.float64)


def _parabolic(left: float, centre: float, right: float) -> float:
    denom = left - 2.0 * centre + right
    if denom >= 0.0:  # not a peak: no refinement
        return 0.0
    return float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


def _spectra(image: FloatArray) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
    """(spectrum of the mean-free Hann-windowed image for correlation, plain spectrum for shifting)."""
    windowed = (image - image.mean()) * _window(*image.shape)
    return np.fft.rfft2(windowed), np.fft.rfft2(image)


def _shifted(spectrum: NDArray[np.complex128], shape: tuple[int, int], dy: float, dx: float) -> FloatArray:
    ky, kx = _freqs(*shape)
    ramp = np.exp(-2j * np.pi * ky * dy)[:, None] * np.exp(-2j * np.pi * kx * dx)[None, :]
    return np.fft.irfft2(spectrum * ramp, s=shape).astype(np.float32)


def _register(
    prev: tuple[NDArray[np.complex128], NDArray[np.complex128]],
    cur_win: NDArray[np.complex128],
    current: FloatArray,
    max_shift: float,
    refine: int,
) -> tuple[float, float, FloatArray]:
    """(dy, dx, previous moved by them): phase correlation, then ``refine`` Lucas-Kanade steps."""
    h, w = current.shape
    cross = cur_win * np.conj(prev[0])
    cross /= np.abs(cross) + 1e-9
    corr = np.fft.irfft2(cross, s=(h, w))
    py, px = np.unravel_index(int(np.argmax(corr)), corr.shape)
    fy = _parabolic(corr[(py - 1) % h, px], corr[py, px], corr[(py + 1) % h, px])
    fx = _parabolic(corr[py, (px - 1) % w], corr[py, px], corr[py, (px + 1) % w])
    sy = float(np.clip((py if py <= h // 2 else py - h) + fy, -max_shift, max_shift))
    sx = float(np.clip((px if px <= w // 2 else px - w) + fx, -max_shift, max_shift))
    warped = _shifted(prev[1], (h, w), sy, sx)
    m = int(np.ceil(max_shift)) + 1
    for _ in range(refine):
        grad_y, grad_x = np.gradient(warped[m - 1 : h - m + 1, m - 1 : w - m + 1])
        gy = np.asarray(grad_y, np.float32)[1:-1, 1:-1].ravel()
        gx = np.asarray(grad_x, np.float32)[1:-1, 1:-1].ravel()
        err = (current - warped)[m : h - m, m : w - m].ravel()
        err = err - err.mean()
        a = np.array([[gy @ gy, gy @ gx], [gy @ gx, gx @ gx]], dtype=np.float64)
        det = a[0, 0] * a[1, 1] - a[0, 1] ** 2
        if det <= 1e-12 * max(1.0, float(a[0, 0] + a[1, 1]) ** 2):
            break
        by, bx = float(gy @ err), float(gx @ err)
        sy = float(np.clip(sy - (a[1, 1] * by - a[0, 1] * bx) / det, -max_shift, max_shift))
        sx = float(np.clip(sx - (a[0, 0] * bx - a[0, 1] * by) / det, -max_shift, max_shift))
        warped = _shifted(prev[1], (h, w), sy, sx)
    return sy, sx, warped


def estimate_shift(
    previous: FloatArray, current: FloatArray, *, max_shift: float = MAX_SHIFT, refine: int = REFINE
) -> tuple[float, float]:
    """The translation ``(dy, dx)`` that moves ``previous`` onto ``current``.

    Phase correlation (Hann window, parabolic sub-pixel peak), then ``refine`` Lucas-Kanade steps on the
    shifted image (brightness change removed, a ``MAX_SHIFT``-px border ignored). ``shift_image(previous, dy,
    dx)`` approximates ``current``; each component is clipped to ``±max_shift``.
    """
    dy, dx, _ = _register(_spectra(previous), _spectra(current)[0], current, max_shift, refine)
    return dy, dx


def shift_image(image: FloatArray, dy: float, dx: float) -> FloatArray:
    """``image`` translated by ``(dy, dx)`` pixels (positive: down/right), by a Fourier phase ramp (periodic)."""
    return _shifted(np.fft.rfft2(image), image.shape, dy, dx)


def temporal_channels(grays: Sequence[FloatArray]) -> FloatArray:
    """The ``motion``, ``residual`` and ``flicker`` channels (``3 x S x S``) of gray crops, oldest first."""
    if not grays:
        raise ValueError("temporal_channels needs at least one crop")
    h, w = grays[-1].shape
    out = np.zeros((3, h, w), dtype=np.float32)
    pairs = len(grays) - 1
    if pairs < 1:
        return out
    motion = np.zeros((h, w), dtype=np.float32)
    residual = np.zeros((h, w), dtype=np.float32)
    rows = np.zeros(h, dtype=np.float32)
    spectra = [_spectra(g) for g in grays]
    for i in range(1, len(grays)):
        prev, cur = grays[i - 1], grays[i]
        diff = cur - prev
        motion += np.abs(diff - diff.mean())
        rows += diff.mean(axis=1) ** 2
        _, _, warped = _register(spectra[i - 1], spectra[i][0], cur, MAX_SHIFT, REFINE)
        err = cur - warped
        residual += np.abs(err - err.mean())
    m = int(np.ceil(MAX_SHIFT))
    border = np.zeros((h, w), dtype=np.float32)
    border[m : h - m, m : w - m] = 1.0
    out[0] = motion * np.float32(MOTION_GAIN / pairs)
    out[1] = residual * border * np.float32(RESIDUAL_GAIN / pairs)
    out[2] = np.sqrt(rows / np.float32(pairs))[:, None] * np.float32(FLICKER_GAIN)
    return np.clip(out, 0.0, CLIP, out=out)


def build_input(crops: Sequence[NDArray[np.uint8]]) -> FloatArray:
    """The model input (``len(CHANNELS) x S x S`` float32) from a face-crop history, oldest first."""
    if not crops:
        raise ValueError("build_input needs at least one crop")
    shape = crops[-1].shape
    if len(shape) != 3 or shape[2] != 3 or shape[0] != shape[1]:
        raise ValueError(f"crops must be square BGR uint8 (S, S, 3), got {shape}")
    if any(c.shape != shape for c in crops):
        raise ValueError("all crops in a history must have the same shape")
    temporal = temporal_channels([to_gray(c) for c in crops])
    return np.concatenate([normalize_crop(crops[-1]), temporal], axis=0)
