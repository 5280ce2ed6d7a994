"""Skin regions for the pulse transplant, from dlib's 68 landmarks (0-based indices).

Five regions (:data:`REGION_NAMES`): the forehead band and the cheek and chin polygons
of :mod:`deidvid.faces.skin` (the two polygons of each cheek merged into one), plus a
nose polygon (bridge top 27, inner eye corners 39/42, wings and base 31-35). Every
polygon is shrunk x0.9 about its box centre, as the rPPG skin mask is, and then cut to
the *skin*: the convex face hull (jaw 0-16 and the forehead's top) minus the eyes,
brows, mouth and nostrils, each grown by a margin proportional to the interocular
distance (IOD) so the geometry is the same at 1080p and in a 128 px crop.

"left"/"right" are as seen in the image (``left_cheek`` is on jaw points 0-5, the
subject's right), the same naming as :mod:`deidvid.faces.skin`.

Pixel convention: landmark ``(x, y)`` in pixels, integers at pixel centres (dlib's);
polygons are rasterised by OpenCV with 1/16 px sub-pixel precision, so shifting the
landmarks by whole pixels shifts every mask exactly (used to work inside a face box).
"""

from __future__ import annotations

import cv2
import numpy as np

from deidvid.faces.skin import (
    CHEEK_LEFT_POLYGONS,
    CHEEK_RIGHT_POLYGONS,
    LEFT_EYE_POINTS,
    MOUTH_CHIN_POLYGON,
    RIGHT_EYE_POINTS,
    SHRINK_FACTOR,
    forehead_polygon,
    shrink_polygon,
)

REGION_NAMES: tuple[str, ...] = (
    "forehead",
    "left_cheek",
    "right_cheek",
    "nose",
    "chin",
)
NUM_REGIONS = len(REGION_NAMES)


def _merge_polygons(first: tuple[int, ...], second: tuple[int, ...]) -> tuple[int, ...]:
    """Union outline of two index polygons that share exactly one edge."""
    n = len(first)
    i = next(k for k in range(n) if first[k] in second and first[(k + 1) % n] in second)
    p, q = first[i], first[(i + 1) % n]
    j = second.index(p)
    path = second[j:] + second[:j]  # starts at p
    if path[-1] != q:  # walk the other way round so the path ends at q
        path = (p, *path[1:][::-1])
    return first[: i + 1] + path[1:-1] + first[i + 1 :]


LEFT_CHEEK_POLYGON = _merge_polygons(*CHEEK_LEFT_POLYGONS)  # (0,1,2,3,4,5,48,31,41)
RIGHT_CHEEK_POLYGON = _merge_polygons(*CHEEK_RIGHT_POLYGONS)  # (16,...,11,54,35,46)
NOSE_POLYGON: tuple[int, ...] = (27, 42, 35, 34, 33, 32, 31, 39)
JAW_POINTS = tuple(range(17))
BROW_LINES: tuple[tuple[int, ...], ...] = (tuple(range(17, 22)), tuple(range(22, 27)))
MOUTH_POINTS = tuple(range(48, 60))  # outer lip contour

# Exclusion margins (x IOD). Brows are lines: the value is the half-width of the band. Narrow, so
# that rPPG masks reaching close to the features see the transplanted pulse there too (halved in
# session 21: docs/pulse-transplant-evaluation.md).
EYE_MARGIN = 0.05
BROW_HALF_WIDTH = 0.06
MOUTH_MARGIN = 0.04
NOSTRIL_MARGIN = 0.025
DEFAULT_FEATHER_PX = 3.0
_SHIFT = 4  # OpenCV fixed-point bits: 1/16 px


def _points(landmarks68: np.ndarray) -> np.ndarray:
    points = np.asarray(landmarks68, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {points.shape}")
    return points


def interocular(landmarks68: np.ndarray) -> float:
    """Distance in pixels between the two eye centres (means of 36-41 and 42-47)."""
    points = _points(landmarks68)
    right = points[list(RIGHT_EYE_POINTS)].mean(axis=0)
    left = points[list(LEFT_EYE_POINTS)].mean(axis=0)
    return float(np.linalg.norm(left - right))


class _Face:
    """The polygons of one face, computed once (region_means runs per face per frame)."""

    def __init__(self, landmarks68: np.ndarray) -> None:
        points = _points(landmarks68)
        self.points = points
        self.iod = interocular(points)
        forehead = forehead_polygon(points)
        self.polygons = [shrink_polygon(forehead, SHRINK_FACTOR)] + [
            shrink_polygon(points[list(ix)], SHRINK_FACTOR)
            for ix in (
                LEFT_CHEEK_POLYGON,
                RIGHT_CHEEK_POLYGON,
                NOSE_POLYGON,
                MOUTH_CHIN_POLYGON,
            )
        ]
        outline = _face_outline(points, forehead)
        # Hull by index, so the vertices stay exact float64 landmarks (shift-exact).
        self.hull = outline[cv2.convexHull(outline.astype(np.float32), returnPoints=False)[:, 0]]

    def extent(self) -> np.ndarray:
        """``(K, 2)`` points whose box holds every mask pixel."""
        return np.concatenate([self.points, self.hull])

    def skin(self, shape_hw: tuple[int, int], origin_xy=(0, 0)) -> np.ndarray:
        """Binary skin ``(H, W)`` uint8 of an image whose pixel (0, 0) is ``origin_xy``."""
        offset = np.asarray(origin_xy, dtype=np.float64)
        points, iod = self.points - offset, self.iod
        mask = np.zeros((int(shape_hw[0]), int(shape_hw[1])), dtype=np.uint8)
        _fill(mask, self.hull - offset, 1)
        for eye in (RIGHT_EYE_POINTS, LEFT_EYE_POINTS):
            _fill(mask, points[list(eye)], 0, EYE_MARGIN * iod)
        thickness = max(1, round(2 * BROW_HALF_WIDTH * iod))
        for brow in BROW_LINES:
            cv2.polylines(
                mask,
                _fixed(points[list(brow)]),
                False,
                0,
                thickness,
                cv2.LINE_8,
                _SHIFT,
            )
        _fill(mask, points[list(MOUTH_POINTS)], 0, MOUTH_MARGIN * iod)
        _fill(mask, _nostril_polygon(points), 0, NOSTRIL_MARGIN * iod)
        return mask


def _face_outline(points: np.ndarray, forehead: np.ndarray) -> np.ndarray:
    """The jaw (0-16) and the forehead band's top: the skin hull is their convex hull."""
    return np.concatenate([points[list(JAW_POINTS)], forehead[len(forehead) // 2 :]])


def skin_box(landmarks68: np.ndarray) -> np.ndarray:
    """``(x0, y0, x1, y1)`` in the landmarks' pixels: the box of the face hull, which holds
    every pixel of the skin (and so every pixel the transplant's field can change)."""
    points = _points(landmarks68)
    outline = _face_outline(points, forehead_polygon(points))
    return np.concatenate([outline.min(axis=0), outline.max(axis=0)])


def region_polygons(landmarks68: np.ndarray) -> list[np.ndarray]:
    """The region polygons, shrunk, in :data:`REGION_NAMES` order.

    Args:
        landmarks68: ``(68, 2)`` ``(x, y)`` pixels.

    Returns:
        ``R`` float64 arrays ``(K_r, 2)``.
    """
    return _Face(landmarks68).polygons


def _fixed(polygon: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(polygon) * (1 << _SHIFT)).astype(np.int32)[None]


def _fill(canvas: np.ndarray, polygon: np.ndarray, value: int, grow_px: float = 0.0) -> None:
    """Fill a polygon; ``grow_px > 0`` also draws its outline that thick (a dilation)."""
    pts = _fixed(polygon)
    cv2.fillPoly(canvas, pts, value, lineType=cv2.LINE_8, shift=_SHIFT)
    if grow_px > 0:
        thickness = max(1, round(2 * grow_px))
        cv2.polylines(canvas, pts, True, value, thickness, lineType=cv2.LINE_8, shift=_SHIFT)


def _nostril_polygon(points: np.ndarray) -> np.ndarray:
    """The base of the nose: points 31-35 and halfway up towards the tip (30)."""
    tip = points[30]
    return np.concatenate([points[31:36], [(points[35] + tip) / 2, (points[31] + tip) / 2]])


def skin_hard_mask(landmarks68: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Binary skin ``(H, W)`` uint8 in {0, 1}: face hull minus grown eyes, brows, mouth,
    nostrils."""
    return _Face(landmarks68).skin(shape_hw)


def _masks_in(polygons: list[np.ndarray], skin: np.ndarray) -> np.ndarray:
    masks = np.zeros((len(polygons), *skin.shape), dtype=bool)
    canvas = np.zeros(skin.shape, dtype=np.uint8)
    for r, polygon in enumerate(polygons):
        canvas[:] = 0
        _fill(canvas, polygon, 1)
        np.logical_and(canvas, skin, out=masks[r])
    return masks


def _feather(hard: np.ndarray, feather_px: float) -> np.ndarray:
    if feather_px <= 0:
        return hard.astype(np.float32)
    # OpenCV does not treat the image border as an edge: a face cut by the crop's edge
    # keeps its weight up to the border (the crop is pasted back, the border is no seam).
    distance = cv2.distanceTransform(hard, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    s = np.clip(distance / np.float32(feather_px), 0.0, 1.0)
    return (s * s * (3.0 - 2.0 * s)).astype(np.float32)


def region_masks(landmarks68: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Boolean region masks ``(R, H, W)``: each shrunk polygon cut to the skin.

    Regions are disjoint up to shared boundary pixels; a region can be empty when the
    face leaves the image.
    """
    face = _Face(landmarks68)
    return _masks_in(face.polygons, face.skin(shape_hw))


def skin_field_mask(
    landmarks68: np.ndarray,
    shape_hw: tuple[int, int],
    feather_px: float = DEFAULT_FEATHER_PX,
) -> np.ndarray:
    """Feathered skin weight ``(H, W)`` float32 in [0, 1] where the transplant may act.

    Exactly 0 outside :func:`skin_hard_mask` (so eyes, brows, mouth, nostrils and the
    background are never touched) and rising smoothly (smoothstep of the distance to
    the nearest non-skin pixel) to 1 at ``feather_px`` pixels inside: the feather goes
    inwards, so no seam appears at the skin's edge. Every region pixel has weight > 0.
    """
    return _feather(skin_hard_mask(landmarks68, shape_hw), feather_px)


def face_layout(
    landmarks68: np.ndarray,
    shape_hw: tuple[int, int],
    feather_px: float = DEFAULT_FEATHER_PX,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Everything pass 2 needs, sharing the work.

    Returns ``(masks (R, H, W) bool, weight (H, W) float32, centres (R, 2))``, the same values as :func:`region_masks`, :func:`skin_field_mask`, :func:`region_centres`.
    """
    face = _Face(landmarks68)
    hard = face.skin(shape_hw)
    centres = np.stack([_polygon_centroid(p) for p in face.polygons])
    return _masks_in(face.polygons, hard), _feather(hard, feather_px), centres


def _polygon_centroid(polygon: np.ndarray) -> np.ndarray:
    x, y = polygon[:, 0], polygon[:, 1]
    x1, y1 = np.append(x[1:], x[:1]), np.append(y[1:], y[:1])  # the next vertex (np.roll, but cheaper)
    cross = x * y1 - x1 * y
    area = cross.sum() / 2.0
    if abs(area) < 1e-9:  # degenerate: vertex mean
        return polygon.mean(axis=0)
    return np.array([((x + x1) * cross).sum(), ((y + y1) * cross).sum()]) / (6.0 * area)


def region_centres(landmarks68: np.ndarray) -> np.ndarray:
    """Area centroids ``(R, 2)`` ``(x, y)`` pixels of the region polygons."""
    return np.stack([_polygon_centroid(p) for p in region_polygons(landmarks68)])
