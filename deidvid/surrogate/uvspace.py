"""The canonical UV texture space, its regions, and the mesh's named parts.

Everything a surrogate texture is defined on: the texture side (:data:`TEXTURE_SIZE`),
the canonical mesh's triangles rasterised once into it, and masks of the parts that
matter (skin for colour and lighting fits, eyes, lips, the inner mouth). Index lists
are MediaPipe FaceMesh's (its ``FACEMESH_*`` connection sets, as vertex rings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from deidvid.faces.canonical_mesh import load_canonical_mesh
from deidvid.surrogate import raster

TEXTURE_SIZE = 256

FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
OUTER_LIPS = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
INNER_LIPS = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191)
RIGHT_EYE = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)  # image left
LEFT_EYE = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)  # image right
RIGHT_BROW = (46, 53, 52, 65, 55, 107, 66, 105, 63, 70)
LEFT_BROW = (276, 283, 282, 295, 285, 336, 296, 334, 293, 300)


@dataclass(frozen=True)
class UVSpace:
    """The canonical mesh in a ``size x size`` texture (see the module docstring).

    Attributes:
        size: texture side in pixels.
        points: ``(468, 2)`` vertex texture pixels.
        triangles: ``(F, 3)`` the canonical triangles.
        ids: ``(size, size)`` int32 triangle per texel, -1 outside the face.
        front_sign: sign of :func:`raster.signed_areas` of a front-facing triangle in an image.
        skin: ``(size, size)`` bool: cheeks, forehead, nose, chin; no eyes, brows, lips or outline.
        inner_mouth: ``(F,)`` bool triangles inside the inner lip ring.
        mouth: ``(size, size)`` bool texels of those triangles.
        eyes: ``(size, size)`` bool texels inside the two eye openings.
    """

    size: int
    points: np.ndarray
    triangles: np.ndarray
    ids: np.ndarray
    front_sign: float
    skin: np.ndarray
    inner_mouth: np.ndarray
    mouth: np.ndarray
    eyes: np.ndarray

    def centres(self) -> np.ndarray:
        """Texel centres along one axis, ``(size,)`` in [0, 1] (``u`` along rows, ``v`` along columns)."""
        return (np.arange(self.size) + 0.5) / self.size

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Texel centres ``(u, v)`` in [0, 1], each ``(size, size)``."""
        c = self.centres()
        return np.meshgrid(c, c)


def _fill(points: np.ndarray, ring: tuple[int, ...], size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.round(points[list(ring)]).astype(np.int32)], 1)
    return mask.astype(bool)


def _inside_ring(triangles: np.ndarray, ring: tuple[int, ...]) -> np.ndarray:
    return np.isin(triangles, ring).all(axis=1)


@lru_cache(maxsize=4)
def uv_space(size: int = TEXTURE_SIZE) -> UVSpace:
    """The UV space at ``size`` (cached; arrays are shared: do not modify)."""
    mesh = load_canonical_mesh()
    points = raster.uv_pixels(mesh.uv, size)
    triangles = mesh.triangles
    ids = raster.triangle_index(points, triangles, (size, size))
    # A frontal view of the canonical model: image y = -model y.
    areas = raster.signed_areas(mesh.vertices * [1.0, -1.0, 1.0], triangles)
    front_sign = float(np.sign(np.median(areas)))

    face = cv2.erode(_fill(points, FACE_OVAL, size).astype(np.uint8), np.ones((size // 16,) * 2, np.uint8)) > 0
    features = np.zeros((size, size), bool)
    for ring in (OUTER_LIPS, RIGHT_EYE, LEFT_EYE, RIGHT_BROW, LEFT_BROW):
        features |= _fill(points, ring, size)
    grown = cv2.dilate(features.astype(np.uint8), np.ones((size // 24,) * 2, np.uint8)) > 0
    inner_mouth = _inside_ring(triangles, INNER_LIPS)
    return UVSpace(
        size=size,
        points=points,
        triangles=triangles,
        ids=ids,
        front_sign=front_sign,
        skin=face & ~grown & (ids >= 0),
        inner_mouth=inner_mouth,
        mouth=np.isin(ids, np.flatnonzero(inner_mouth)),
        eyes=_fill(points, RIGHT_EYE, size) | _fill(points, LEFT_EYE, size),
    )
