"""SYNTHETIC camera clips of a real face photograph: live (micro-motion, blinks), print and screen-replay attacks.

Nothing here is a recording of a real presentation attack: a live clip is one still photograph animated with
sub-pixel jitter, slow scale/rotation drift, a small non-rigid warp and blinks, seen through a simulated sensor
(noise, blur, lighting drift). A print attack is the same photograph with reduced gamut, a halftone dot screen
and paper texture, moved as a rigid plane. A replay attack is an animated (live-like) clip shown on a simulated
screen: pixel grid, moiré, gamma/colour shift, refresh flicker, glare, moved as a rigid plane. Strengths are drawn
per clip from wide ranges. The ``_hq`` kinds are high-quality attacks with faint texture artefacts (a good photo
print, half of them on a stand without any motion; a good screen, half of them showing a still photo) so that
a model cannot rely on texture alone: what gives them away is the missing non-rigid micro-motion and blinks, or
the screen's flicker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge_agent.vision._cv import cv2 as load_cv2

__all__ = ["ClipKind", "FaceSource", "render_clip"]

ClipKind = Literal["live", "print", "replay", "print_hq", "replay_hq"]
F32 = NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FaceSource:
    """A real face photograph (BGR uint8) and its face box ``(x, y, w, h)``."""

    name: str
    origin: str
    image: NDArray[np.uint8]
    box: tuple[int, int, int, int]


def _cv2() -> Any:
    cv2 = load_cv2()

    return cv2


def _walk(rng: np.random.Generator, frames: int, step: float) -> F32:
    """A smoothed random walk starting at 0 (one value per frame)."""
    raw: F32 = np.cumsum(rng.normal(0.0, step, frames)).astype(np.float32)
    walk: F32 = raw - raw[0]
    return walk


def _base_affine(rng: np.random.Generator, src: FaceSource, width: int, height: int) -> NDArray[np.float64]:
    """Source → frame: the face at a random size, position and roll."""
    cv2 = load_cv2()
    x, y, w, h = src.box
    scale = rng.uniform(0.28, 0.42) * width / w
    angle = rng.uniform(-6.0, 6.0)
    target = (width / 2 + rng.uniform(-0.08, 0.08) * width, height / 2 + rng.uniform(-0.06, 0.04) * height)
    m: NDArray[np.float64] = cv2.getRotationMatrix2D((x + w / 2, y + h / 2), angle, scale)
    m[:, 2] += np.array(target) - np.array([x + w / 2, y + h / 2])
    return m


def _jitter(m: NDArray[np.float64], centre: tuple[float, float], dx: float, dy: float, rot: float, s: float) -> Any:
    cv2 = load_cv2()
    j = cv2.getRotationMatrix2D(centre, rot, 1.0 + s)
    j[:, 2] += (dx, dy)
    return np.vstack([j, [0, 0, 1]])[:2] @ np.vstack([m, [0, 0, 1]])


def _eye_mask(src: FaceSource) -> F32:
    cv2 = load_cv2()
    x, y, w, h = src.box
    mask = np.zeros(src.image.shape[:2], np.float32)
    for fx in (0.32, 0.68):
        centre = (round(x + fx * w), round(y + 0.40 * h))
        cv2.ellipse(mask, centre, (round(0.11 * w), round(0.055 * h)), 0, 0, 360, 1.0, -1)
    blurred: F32 = cv2.GaussianBlur(mask, (0, 0), 0.02 * w)
    return blurred


def _animated(rng: np.random.Generator, src: FaceSource, frames: int, width: int, height: int) -> list[F32]:
    """A live-looking face: micro-motion, non-rigid warp and (sometimes) a blink, before any camera or screen."""
    cv2 = load_cv2()
    image = src.image.astype(np.float32)
    if rng.random() < 0.5:
        image = image[:, ::-1].copy()
        x, y, w, h = src.box
        src = FaceSource(src.name, src.origin, src.image, (src.image.shape[1] - x - w, y, w, h))
    m = _base_affine(rng, src, width, height)
    eye = _eye_mask(src)[..., None]
    x, y, w, h = src.box
    lid = image[y + int(0.52 * h) : y + int(0.6 * h), x + int(0.3 * w) : x + int(0.7 * w)].mean(axis=(0, 1)) * 0.75
    closure = np.zeros(frames, np.float32)
    if frames >= 3 and rng.random() < 0.6:
        start = int(rng.integers(0, frames - 2))
        closure[start : start + 3] = (0.5, 1.0, 0.5)
    t_step, r_step, s_step = rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.25), rng.uniform(0.001, 0.004)
    dx, dy = _walk(rng, frames, t_step), _walk(rng, frames, t_step)
    rot, scl = _walk(rng, frames, r_step), _walk(rng, frames, s_step)
    # Non-rigid: a smooth bump (cheek/mouth) that swells and shrinks, ~0.3-0.9 px.
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = m @ np.array([x + w * rng.uniform(0.3, 0.7), y + h * rng.uniform(0.6, 0.85), 1.0])
    bump = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (0.12 * width) ** 2)).astype(np.float32)
    amp, phase, speed = rng.uniform(0.3, 0.9), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
    centre = (width / 2.0, height / 2.0)
    out: list[F32] = []
    for t in range(frames):
        face = image if closure[t] == 0 else image * (1 - closure[t] * eye) + lid * closure[t] * eye
        mt = _jitter(m, centre, float(dx[t]), float(dy[t]), float(rot[t]), float(scl[t]))
        frame = cv2.warpAffine(face, mt, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        k = float(amp * np.sin(phase + speed * t))
        mapx, mapy = xx + k * bump * 0.6, yy - k * bump
        out.append(cv2.remap(frame, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101))
    return out


def _camera(rng: np.random.Generator, frames: list[F32]) -> list[NDArray[np.uint8]]:
    """A sensor: per-clip colour grade and blur, slow lighting drift, fresh noise in every frame."""
    cv2 = load_cv2()
    gains = rng.uniform(0.9, 1.1, 3).astype(np.float32)
    contrast, offset = rng.uniform(0.85, 1.15), rng.uniform(-15, 15)
    blur, noise = rng.uniform(0.0, 0.7), rng.uniform(1.0, 3.5)
    drift, period, phase = rng.uniform(0.0, 0.03), rng.uniform(20, 60), rng.uniform(0, 2 * np.pi)
    out = []
    for t, frame in enumerate(frames):
        f = (frame * gains - 128.0) * contrast + 128.0 + offset
        f = f * (1.0 + drift * np.sin(2 * np.pi * t / period + phase))
        if blur > 0.3:
            f = cv2.GaussianBlur(f, (0, 0), blur)
        sigma = noise * (0.5 + 0.5 * np.sqrt(np.clip(f, 0, 255) / 255.0))
        f = f + rng.standard_normal(f.shape, dtype=np.float32) * sigma
        out.append(np.clip(np.rint(f), 0, 255).astype(np.uint8))
    return out


def _u(rng: np.random.Generator, hq: bool, normal: tuple[float, float], high_quality: tuple[float, float]) -> float:
    """A strength drawn from ``normal``, or from ``high_quality`` (weaker artefacts) for a high-quality attack."""
    return float(rng.uniform(*(high_quality if hq else normal)))


def _plane_motion(rng: np.random.Generator, frames: int, width: int, height: int, *, still: bool) -> list[Any]:
    """Homographies of a rigid plane (paper, phone, tablet): hand-held (drift plus a small wobble), or on a stand."""
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    step, wobble = (0.0, 0.0) if still else (rng.uniform(0.2, 0.8), rng.uniform(0.1, 0.6))
    shift = np.stack([_walk(rng, frames, step), _walk(rng, frames, step)], axis=1)
    tilt = np.stack([np.stack([_walk(rng, frames, wobble) for _ in range(2)], 1) for _ in range(4)], 1)
    cv2 = load_cv2()
    return [cv2.getPerspectiveTransform(corners, corners + shift[t] + tilt[t]) for t in range(frames)]


def _screen_pattern(width: int, height: int, period: float, angle: float) -> tuple[F32, F32]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    u, v = (xx * c + yy * s) / period, (-xx * s + yy * c) / period
    return u.astype(np.float32), v.astype(np.float32)


def _print(rng: np.random.Generator, src: FaceSource, frames: int, width: int, height: int, hq: bool) -> list[F32]:
    cv2 = load_cv2()
    photo = _animated(rng, src, 1, width, height)[0]
    gray = photo.mean(axis=2, keepdims=True)
    photo = gray + _u(rng, hq, (0.5, 0.85), (0.85, 1.0)) * (photo - gray)  # reduced gamut
    black, white = _u(rng, hq, (0.06, 0.18), (0.01, 0.05)), _u(rng, hq, (0.85, 0.96), (0.95, 1.0))
    photo = 255.0 * (black + (white - black) * np.clip(photo / 255.0, 0, 1))
    period, mix = rng.uniform(2.2, 4.0), _u(rng, hq, (0.2, 0.7), (0.0, 0.08))
    ink = 1.0 - photo / 255.0
    halftone = np.empty_like(photo)
    for ch, angle in enumerate(np.array([15.0, 75.0, 0.0]) + rng.uniform(-5, 5)):
        u, v = _screen_pattern(width, height, period, float(angle))
        screen = 0.5 + 0.25 * (np.cos(2 * np.pi * u) + np.cos(2 * np.pi * v))
        halftone[..., ch] = 255.0 * (1.0 - (ink[..., ch] > screen))
    printed = cv2.GaussianBlur((1 - mix) * photo + mix * halftone, (0, 0), rng.uniform(0.4, 0.8))
    low = cv2.GaussianBlur(rng.standard_normal((height, width), dtype=np.float32), (0, 0), 4.0) * 4.0
    fine = rng.standard_normal((height, width), dtype=np.float32)
    paper = 1.0 + _u(rng, hq, (0.01, 0.03), (0.0, 0.005)) * low + _u(rng, hq, (0.005, 0.02), (0.0, 0.004)) * fine
    printed = printed * paper[..., None] * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    still = hq and rng.random() < 0.5
    return [
        cv2.warpPerspective(printed, h, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        for h in _plane_motion(rng, frames, width, height, still=still)
    ]


def _replay(rng: np.random.Generator, src: FaceSource, frames: int, width: int, height: int, hq: bool) -> list[F32]:
    cv2 = load_cv2()
    # A recorded video of the face; a high-quality attack may show a still photo on the screen instead.
    video = _animated(rng, src, frames, width, height)
    if hq and rng.random() < 0.5:
        video = [video[0]] * frames
    gamma = _u(rng, hq, (0.75, 1.3), (0.92, 1.08))
    spread = 0.03 if hq else 0.1
    gains = np.array([1 + rng.uniform(0, spread), 1 + rng.uniform(-spread, spread) / 2, 1 - rng.uniform(0, spread)])
    black = _u(rng, hq, (8, 30), (1, 8))
    period = rng.uniform(2.0, 3.5)
    k_grid, k_sub = _u(rng, hq, (0.1, 0.45), (0.0, 0.06)), _u(rng, hq, (0.03, 0.15), (0.0, 0.03))
    u, v = _screen_pattern(width, height, period, rng.uniform(-4, 4))
    lines = np.maximum((0.5 + 0.5 * np.cos(2 * np.pi * u)) ** 6, (0.5 + 0.5 * np.cos(2 * np.pi * v)) ** 6)
    grid = np.stack(
        [(1 - k_grid * lines) * (1 - k_sub * (0.5 - 0.5 * np.cos(2 * np.pi * (u - c / 3)))) for c in range(3)], 2
    )
    mu, _ = _screen_pattern(width, height, rng.uniform(8, 30), rng.uniform(0, 180))
    m_amp, m_phase, m_speed = _u(rng, hq, (0.01, 0.05), (0.0, 0.01)), rng.uniform(0, 2 * np.pi), rng.uniform(0.2, 1.0)
    gy, gx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
    g_sigma, g_peak = rng.uniform(0.1, 0.3) * width, _u(rng, hq, (15, 60), (0, 20))
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    glare = g_peak * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * g_sigma**2))
    f_amp, f_rate, f_phase = _u(rng, hq, (0.015, 0.06), (0.008, 0.03)), rng.uniform(1.5, 3.0), rng.uniform(0, 6.3)
    b_amp, b_len, b_rate = (
        _u(rng, hq, (0.01, 0.05), (0.005, 0.02)),
        rng.uniform(0.3, 1.2) * height,
        rng.uniform(0.8, 2.5),
    )
    out = []
    motion = _plane_motion(rng, frames, width, height, still=False)
    for t, (content, h) in enumerate(zip(video, motion, strict=True)):
        shown = black + (255.0 - black) * (np.clip(content, 0, 255) / 255.0) ** gamma * gains
        shown = shown * grid * (1 + m_amp * np.cos(2 * np.pi * mu + m_phase + m_speed * t))[..., None]
        shown = shown + glare[..., None]
        seen = cv2.warpPerspective(shown, h, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        band = 1 + b_amp * np.sin(2 * np.pi * yy[:, :1] / b_len + b_rate * t)
        out.append(seen * band[..., None] * (1 + f_amp * np.sin(f_phase + f_rate * t)))
    return out


def render_clip(
    kind: ClipKind,
    source: FaceSource,
    rng: np.random.Generator,
    *,
    frames: int = 8,
    width: int = 320,
    height: int = 240,
) -> list[NDArray[np.uint8]]:
    """``frames`` SYNTHETIC BGR uint8 frames of ``kind`` made from ``source``.

    ``kind``: "live", "print", "replay", or the high-quality attacks "print_hq" and "replay_hq".
    """
    if frames < 1:
        raise ValueError("frames must be >= 1")
    if kind == "live":
        scene = _animated(rng, source, frames, width, height)
    elif kind in ("print", "print_hq"):
        scene = _print(rng, source, frames, width, height, hq=kind == "print_hq")
    elif kind in ("replay", "replay_hq"):
        scene = _replay(rng, source, frames, width, height, hq=kind == "replay_hq")
    else:
        raise ValueError(f"unknown clip kind {kind!r}")
    return _camera(rng, scene)
