"""deidvid.surrogate.render: the redrawn eyes follow the gaze, the open mouth shows teeth."""

from __future__ import annotations

import numpy as np
import pytest

from deidvid.faces.canonical_mesh import load_canonical_mesh
from deidvid.faces.iris import EYE_CORNERS
from deidvid.surrogate import render
from deidvid.surrogate.uvspace import INNER_LIPS, LEFT_EYE, RIGHT_EYE

WHITE, IRIS = np.array([220.0, 215.0, 210.0]), np.array([60.0, 40.0, 30.0])


def _face(size: int = 200, mouth_open_cm: float = 0.0) -> np.ndarray:
    """The canonical mesh seen from the front, ``(468, 3)`` in pixels of a ``size`` image."""
    vertices = load_canonical_mesh().vertices.astype(np.float64).copy()
    if mouth_open_cm:
        lower = [i for i in INNER_LIPS[:11]]  # from one corner along the lower lip to the other
        vertices[lower[1:-1], 1] -= mouth_open_cm
    points = vertices * [1.0, -1.0, 1.0] * (size / 18.0)  # ~15 cm face across most of the image
    points[:, :2] += size / 2
    return points


def _dark_centroid_x(image: np.ndarray, points: np.ndarray, ring: tuple[int, ...]) -> float:
    from deidvid.surrogate.render import _polygon_mask

    opening = _polygon_mask(image.shape[:2], points[list(ring), :2]) > 0.99
    dark = opening & (image.mean(axis=2) < 100)
    return float(np.nonzero(dark)[1].mean())


@pytest.mark.parametrize("eye", [0, 1])
def test_the_iris_is_drawn_where_the_gaze_says(eye):
    points = _face()
    a, b = EYE_CORNERS[eye]
    width = np.linalg.norm(points[b, :2] - points[a, :2])
    ring = (RIGHT_EYE, LEFT_EYE)[eye]
    xs = []
    for x in (-0.12, 0.12):
        image = np.full((200, 200, 3), 128.0, np.float32)
        render.draw_eyes(image, points, np.array([[x, 0.0, 0.2]] * 2), WHITE, IRIS)
        xs.append(_dark_centroid_x(image, points, ring))
    # The iris moves to the image's right by the gaze's change x the eye's width (less the lids' clipping).
    assert 0.6 * 0.24 * width < xs[1] - xs[0] < 1.2 * 0.24 * width, (xs, width)


def test_a_closed_eye_shows_no_iris():
    points = _face()
    for ring in (RIGHT_EYE, LEFT_EYE):  # lids shut: every lid point on the corner line
        corners = points[[ring[0], ring[8]], :2]
        for k, i in enumerate(ring):
            t = (k if k <= 8 else 16 - k) / 8
            points[i, :2] = corners[0] + t * (corners[1] - corners[0])
    image = np.full((200, 200, 3), 128.0, np.float32)
    render.draw_eyes(image, points, np.array([[0.0, 0.0, 0.2]] * 2), WHITE, IRIS)
    assert np.abs(image - 128.0).max() < 30.0  # at most an anti-aliased line


def test_an_open_mouth_shows_upper_teeth_over_a_dark_inside():
    points = _face(mouth_open_cm=1.5)
    image = np.full((200, 200, 3), 128.0, np.float32)
    render.fill_mouth(image, points, np.array([40.0, 20.0, 20.0]), 0.85 * WHITE)
    upper_mid, lower_mid = points[13, :2], points[14, :2]
    column = int(round(upper_mid[0]))
    top, bottom = int(np.ceil(upper_mid[1])) + 1, int(np.floor(lower_mid[1])) - 1
    profile = image[top:bottom, column].mean(axis=1)
    assert bottom - top > 10
    assert profile[: len(profile) // 4].mean() > 150  # teeth under the upper lip
    assert profile[-len(profile) // 4 :].mean() < 60  # the mouth's dark inside above the lower lip
