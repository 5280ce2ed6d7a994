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

GAMMA = 2.2

# fmt: off
TEMPLATE = np.array([
    [0.0792396913815, 0.339223741112], [0.0829219487236, 0.456955367943],
    [0.0967927109165, 0.575648016728], [0.122141515615, 0.691921601066],
    [0.168687863544, 0.800341263616], [0.239789390707, 0.895732504778],
    [0.325662452515, 0.977068762493], [0.422318282013, 1.04329000149],
    [0.531777802068, 1.06080371126], [0.641296298053, 1.03981924107],
    [0.738105872266, 0.972268833998], [0.824444363295, 0.889624082279],
    [0.894792677532, 0.792494155836], [0.939395486253, 0.681546643421],
    [0.96111933829, 0.562238253072], [0.970579841181, 0.441758925744],
    [0.971193274221, 0.322118743967], [0.163846223133, 0.249151738053],
    [0.21780354657, 0.204255863861], [0.291299351124, 0.192367318323],
    [0.367460241458, 0.203582210627], [0.4392945113, 0.233135599851],
    [0.586445962425, 0.228141644834], [0.660152671635, 0.195923841854],
    [0.737466449096, 0.182360984545], [0.813236546239, 0.192828009114],
    [0.8707571886, 0.235293377042], [0.51534533827, 0.31863546193],
    [0.516221448289, 0.396200446263], [0.517118861835, 0.473797687758],
    [0.51816430343, 0.553157797772], [0.433701156035, 0.604054457668],
    [0.475501237769, 0.62076344024], [0.520712933176, 0.634268222208],
    [0.565874114041, 0.618796581487], [0.607054002672, 0.60157671656],
    [0.252418718401, 0.331052263829], [0.298663015648, 0.302646354002],
    [0.355749724218, 0.303020650651], [0.403718978315, 0.33867711083],
    [0.352507175597, 0.349987615384], [0.296791759886, 0.350478978225],
    [0.631326076346, 0.334136672344], [0.679073381078, 0.29645404267],
    [0.73597236153, 0.294721285802], [0.782865376271, 0.321305281656],
    [0.740312274764, 0.341849376713], [0.68499850091, 0.343734332172],
    [0.353167761422, 0.746189164237], [0.414587777921, 0.719053835073],
    [0.477677654595, 0.706835892494], [0.522732900812, 0.717092275768],
    [0.569832064287, 0.705414478982], [0.635195811927, 0.71565572516],
    [0.69951672331, 0.739419187253], [0.639447159575, 0.805236879972],
    [0.576410514055, 0.835436670169], [0.525398405766, 0.841706377792],
    [0.47641545769, 0.837505914975], [0.41379548902, 0.810045601727],
    [0.380084785646, 0.749979603086], [0.477955996282, 0.74513234612],
    [0.523389793327, 0.748924302636], [0.571057789237, 0.74332894691],
    [0.672409137852, 0.744177032192], [0.572539621444, 0.776609286626],
    [0.5240106503, 0.783370783245], [0.478117894506, 0.780373263371],
])
# fmt: on

SKIN_LIN = np.array([0.55, 0.33, 0.25])  # linear-light skin colour (RGB)
# Relative pulse amplitude per channel (green strongest), linear light.
PULSE_AMPLITUDE = np.array([0.002, 0.005, 0.0015])


def landmarks_in(size: int, scale: float | None = None, offset=(0.0, 0.0)) -> np.ndarray:
    """``(68, 2)`` frontal landmarks in a ``size`` x ``size`` image (face ~63 % wide)."""
    scale = 0.63 * size if scale is None else scale
    x0 = (size - scale * 0.9) / 2 - 0.08 * scale + offset[0]
    y0 = 0.26 * size + offset[1]
    return TEMPLATE * scale + np.array([x0, y0])


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
