"""Synthetic faces for the pulse-transplant tests (no model, no video, no shared data).

Landmarks: the 68-point mean frontal face of OpenFace's ``align_dlib`` template
(min-max normalised to [0, 1]) scaled into the image. Faces: smooth skin shading with a
fixed fine texture (so there is identity-like detail to protect), dark eyes, brows,
lips and nostrils, and a background; pixels are built in *linear* light and converted
to the display scale with gamma 2.2, the convention of :mod:`deidvid.pulse`.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deidvid.testing.face_template import FRONTAL_68

GAMMA = 2.2


SKIN_LIN = np.array([0.55, 0.33, 0.25])  # linear-light skin colour (RGB)
# Relative pulse amplitude per channel (green strongest), linear light.
PULSE_AMPLITUDE = np.array([0.002, 0.005, 0.0015])


def landmarks_in(size: int, scale: float | None = None, offset=(0.0, 0.0)) -> np.ndarray:
    """``(68, 2)`` frontal landmarks in a ``size`` x ``size`` image (face ~63 % wide)."""
    scale = 0.63 * size if scale is None else scale
    x0 = (size - scale * 0.9) / 2 - 0.08 * scale + offset[0]
    y0 = 0.26 * size + offset[1]
    return FRONTAL_68 * scale + np.array([x0, y0])


def _poly(canvas, points, value):
    cv2.fillPoly(canvas, [np.round(points * 16).astype(np.int32)], value, cv2.LINE_AA, 4)


def face_linear(landmarks: np.ndarray, shape_hw, seed: int = 0) -> np.ndarray:
    """A textured face ``(H, W, 3)`` float64 in linear light, in (0, 1)."""
    height, width = shape_hw
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    centre = landmarks.mean(axis=0)
    size = np.ptp(landmarks[:, 0])
    shade = 1.0 - 0.35 * ((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / size**2
    # fine texture: identity-like detail, 1-2 px grain with +-15 % contrast
    grain = cv2.GaussianBlur(rng.standard_normal((height, width)), (0, 0), 0.8)
    grain = 1.0 + 0.15 * grain / grain.std()
    image = np.empty((height, width, 3))
    image[:] = [0.05, 0.12, 0.20]  # background
    face = np.zeros((height, width), np.float32)
    hull = cv2.convexHull(
        np.concatenate([landmarks[:17], landmarks[17:27] - [0, 0.3 * size]]).astype(np.float32)
    )
    _poly(face, hull[:, 0], 1.0)
    face = cv2.GaussianBlur(face, (0, 0), 1.0)[..., None]
    skin = SKIN_LIN * (shade * grain)[..., None]
    image = face * skin + (1 - face) * image
    features = np.zeros((height, width), np.float32)
    for eye in (landmarks[36:42], landmarks[42:48]):
        _poly(features, eye, 1.0)
    for brow in (landmarks[17:22], landmarks[22:27]):
        cv2.polylines(
            features,
            [np.round(brow * 16).astype(np.int32)],
            False,
            1.0,
            3,
            cv2.LINE_AA,
            4,
        )
    _poly(features, landmarks[48:60], 0.6)
    _poly(features, landmarks[31:36], 0.8)
    features = cv2.GaussianBlur(features, (0, 0), 0.7)[..., None]
    dark = np.array([0.03, 0.02, 0.02])
    image = features * dark + (1 - features) * image
    return np.clip(image, 1e-4, 0.999)


def to_display(linear: np.ndarray) -> np.ndarray:
    return np.clip(linear, 0, 1) ** (1 / GAMMA)


def to_linear(display: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(display, np.float64), 0, 1) ** GAMMA


def face_hull_mask(landmarks: np.ndarray, shape_hw) -> np.ndarray:
    """Independent ``(H, W)`` bool face area (hull of the 68 points and a forehead)."""
    size = np.ptp(landmarks[:, 0])
    pts = np.concatenate([landmarks[:17], landmarks[17:27] - [0, 0.3 * size]])
    canvas = np.zeros(shape_hw, np.uint8)
    _poly(canvas, cv2.convexHull(pts.astype(np.float32))[:, 0], 1)
    return canvas.astype(bool)


def pulse_wave(times_s: np.ndarray, bpm: float = 72.0, phase: float = 0.3) -> np.ndarray:
    """Unit sinusoid ``(T,)``."""
    return np.sin(2 * np.pi * bpm / 60.0 * times_s + phase)


class Synthetic:
    GAMMA = GAMMA
    SKIN_LIN = SKIN_LIN
    PULSE_AMPLITUDE = PULSE_AMPLITUDE
    landmarks_in = staticmethod(landmarks_in)
    face_linear = staticmethod(face_linear)
    to_display = staticmethod(to_display)
    to_linear = staticmethod(to_linear)
    face_hull_mask = staticmethod(face_hull_mask)
    pulse_wave = staticmethod(pulse_wave)


@pytest.fixture(scope="session")
def syn() -> type[Synthetic]:
    """The synthetic-data helpers (a fixture: test folders here are not packages)."""
    return Synthetic
